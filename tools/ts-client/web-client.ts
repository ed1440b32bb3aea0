// The shapes the old system's web and mobile clients use (docs/contract.md): what they read from
// and send to the REST API. check.ts proves the types generated from /openapi.json fit them.

export interface Destination {
  id: number;
  name: string;
  tax_amount: number;
  is_promotion: boolean;
  allows_pets: boolean;
}

export interface Flight {
  id: number;
  flight_number: string;
  origin: string;
  base_price: number;
  destination_id: number;
  capacity: number;
  seats_available: number;
  destination: Destination;
}

export interface Booking {
  id: number;
  passenger_name: string;
  passenger_age: number;
  has_pet: boolean;
  flight_id: number;
  total_price: number;
  created_at: string;
  status: string;
}

export interface NewDestination {
  name: string;
  tax_amount: number;
  is_promotion?: boolean;
  allows_pets?: boolean;
}

export interface NewFlight {
  flight_number: string;
  origin: string;
  base_price: number;
  destination_id: number;
  capacity?: number;
}

export interface NewBooking {
  passenger_name: string;
  passenger_age: number;
  has_pet?: boolean;
  flight_id: number;
}

export interface GeneralStats {
  total_revenue: number;
  total_pet_bookings: number;
  total_infant_count: number;
  total_candy_cost: number;
}

export interface DestinationStats {
  destinations: { destination: string; total_bookings: number }[];
  most_popular: string | null;
}

export interface CandyLog {
  entries: string[];
  total_count: number;
}

export interface ChatRequest {
  message: string;
  session_id?: string;
}

export interface ChatAnswer {
  response: string;
  session_id: string;
}

export interface Token {
  access_token: string;
  token_type: string;
}

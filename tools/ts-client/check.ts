// Compile-time proof (tsc --noEmit --strict) that the client generated from /openapi.json
// (api.d.ts, written by scripts/ts_client_check.py) fits the web client's shapes: every answer
// can be used where the web client expects its type, and every request the web client sends is
// one the API accepts.
import type { paths } from "./api";
import type * as Web from "./web-client";

type Fits<A, B> = [A] extends [B] ? true : false;
function fits<T extends true>(): T | void {}

type Json<T> = T extends { content: { "application/json": infer B } } ? B : never;
type Answer<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  responses: { 200: infer R };
}
  ? Json<R>
  : never;
type Body<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: infer R;
}
  ? Json<NonNullable<R>>
  : never;

// Answers → the web client's types.
fits<Fits<Answer<"/api/v1/flights/destinations", "get">, Web.Destination[]>>();
fits<Fits<Answer<"/api/v1/flights/destinations/{id}", "get">, Web.Destination>>();
fits<Fits<Answer<"/api/v1/flights/destinations", "post">, Web.Destination>>();
fits<Fits<Answer<"/api/v1/flights", "get">, Web.Flight[]>>();
fits<Fits<Answer<"/api/v1/flights/{id}", "get">, Web.Flight>>();
fits<Fits<Answer<"/api/v1/flights", "post">, Web.Flight>>();
fits<Fits<Answer<"/api/v1/bookings", "post">, Web.Booking>>();
fits<Fits<Answer<"/api/v1/bookings", "get">, Web.Booking[]>>();
fits<Fits<Answer<"/api/v1/bookings/{id}", "get">, Web.Booking>>();
fits<Fits<Answer<"/api/v1/bookings/{id}/cancel", "post">, Web.Booking>>();
fits<Fits<Answer<"/api/v1/stats/general", "get">, Web.GeneralStats>>();
fits<Fits<Answer<"/api/v1/stats/destinations", "get">, Web.DestinationStats>>();
fits<Fits<Answer<"/api/v1/stats/candy", "get">, Web.CandyLog>>();
fits<Fits<Answer<"/api/v1/ai/chat", "post">, Web.ChatAnswer>>();
fits<Fits<Answer<"/api/v1/auth/login", "post">, Web.Token>>();

// The web client's requests → what the API accepts.
fits<Fits<Web.NewDestination, Body<"/api/v1/flights/destinations", "post">>>();
fits<Fits<Web.NewFlight, Body<"/api/v1/flights", "post">>>();
fits<Fits<Web.NewBooking, Body<"/api/v1/bookings", "post">>>();
fits<Fits<Web.ChatRequest, Body<"/api/v1/ai/chat", "post">>>();

// The check bites: a shape the API does not answer is refused.
// @ts-expect-error a booking's id is a number, not a string
fits<Fits<Answer<"/api/v1/bookings", "post">, { id: string }>>();
// @ts-expect-error a booking needs its flight
fits<Fits<{ passenger_name: string; passenger_age: number }, Body<"/api/v1/bookings", "post">>>();

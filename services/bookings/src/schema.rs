//! Diesel's view of the `bookings` schema (kept by hand in step with `migrations/`; the outbox
//! is written through `flightmesh-events`).

diesel::table! {
    bookings.flight_seats (flight_id) {
        flight_id -> Int8,
        capacity -> Int4,
        seats_taken -> Int4,
    }
}

diesel::table! {
    bookings.bookings (id) {
        id -> Int8,
        passenger_name -> Text,
        passenger_age -> Int4,
        has_pet -> Bool,
        flight_id -> Int8,
        flight_number -> Text,
        destination_id -> Int8,
        destination_name -> Text,
        base_price -> Numeric,
        discount -> Numeric,
        tax_amount -> Numeric,
        total_price -> Numeric,
        status -> Text,
        user_id -> Nullable<Text>,
        created_at -> Timestamptz,
        cancelled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    bookings.idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        fingerprint -> Text,
        booking_id -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(bookings -> flight_seats (flight_id));
diesel::allow_tables_to_appear_in_same_query!(flight_seats, bookings, idempotency_keys);

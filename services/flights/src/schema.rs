//! Diesel's view of the `flights` schema (kept by hand in step with `migrations/`).

diesel::table! {
    flights.destinations (id) {
        id -> Int8,
        name -> Text,
        tax_amount -> Numeric,
        is_promotion -> Bool,
        allows_pets -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    flights.flights (id) {
        id -> Int8,
        flight_number -> Text,
        origin -> Text,
        base_price -> Numeric,
        destination_id -> Int8,
        capacity -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(flights -> destinations (destination_id));
diesel::allow_tables_to_appear_in_same_query!(destinations, flights);

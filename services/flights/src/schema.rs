//! Diesel's view of the `flights` schema (kept by hand in step with `migrations/`).

diesel::table! {
    flights.destinations (id) {
        id -> Int8,
        name -> Text,
        tax_amount -> Numeric,
        is_promotion -> Bool,
        allows_pets -> Bool,
        created_at -> Timestamptz,
        description -> Text,
    }
}

diesel::table! {
    flights.destination_embeddings (destination_id) {
        destination_id -> Int8,
        model -> Text,
        dimensions -> Int4,
        vector -> Array<Float4>,
        updated_at -> Timestamptz,
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
diesel::joinable!(destination_embeddings -> destinations (destination_id));
diesel::allow_tables_to_appear_in_same_query!(destinations, flights, destination_embeddings);

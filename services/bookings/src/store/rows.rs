//! The row types of a booking: the stored row, a new booking about to be stored, and what
//! creating one did.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;

use crate::flights::FlightSnapshot;
use crate::pricing::Price;
use crate::schema::bookings;

/// A booking row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = bookings)]
pub struct BookingRow {
    pub id: i64,
    pub passenger_name: String,
    pub passenger_age: i32,
    pub has_pet: bool,
    pub flight_id: i64,
    pub flight_number: String,
    pub destination_id: i64,
    pub destination_name: String,
    pub base_price: Decimal,
    pub discount: Decimal,
    pub tax_amount: Decimal,
    pub total_price: Decimal,
    pub status: String,
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

/// A validated, priced booking about to be stored.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub passenger_name: String,
    pub passenger_age: i32,
    pub has_pet: bool,
    pub user_id: Option<String>,
    pub flight: FlightSnapshot,
    pub price: Price,
}

/// What creating a booking did.
#[derive(Debug, Clone)]
pub enum Booked {
    /// A new booking (and its event).
    Created(BookingRow),
    /// The Idempotency-Key's earlier booking; nothing new was written.
    Replayed(BookingRow),
}

//! The load generator's parts: [`broker`] (RabbitMQ's own publish and consume rates),
//! [`client`] (REST or gRPC calls that report an outcome label), [`run`] (closed-loop workers or an open-loop schedule, with a
//! progress line), [`report`] (the HDR histogram summary) and [`verify`] (Redis statistics
//! against PostgreSQL's bookings).

pub mod broker;
pub mod client;
pub mod http1;
pub mod report;
pub mod run;
pub mod setup;
pub mod verify;

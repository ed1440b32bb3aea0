//! The load generator's parts: [`args`] (a tiny flag parser), [`client`] (REST or gRPC calls
//! that report an outcome label), [`run`] (closed-loop workers or an open-loop schedule, with a
//! progress line) and [`report`] (the HDR histogram summary).

pub mod args;
pub mod client;
pub mod report;
pub mod run;
pub mod setup;

//! `embed_migrations!` reads `migrations/` at compile time, but cargo only notices changes to the
//! files it has embedded: a new migration folder would not rebuild this crate without this.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

//! `sqlx::migrate!` embeds the migration files when the crate compiles: without this, a new or
//! changed migration is not picked up until something else in the crate changes.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

//! Where pairs come from. Each source turns seeds into requests and fetched pages into records.
pub mod a1111;
pub mod image_text;

//! Loading and validating everything an operator or engineer configures: the app config, device
//! profiles (`device-profiles/`), pipelines (`pipelines/`) and the asset registers (CSV).
//!
//! Every error names the file, the line (where one is known) and the field path, and loading
//! reports all errors of a file set at once rather than stopping at the first.

pub mod app;
mod error;
pub mod pipeline;
pub mod profile;
pub mod registers;

pub use error::{line_of_field, load_yaml_str, ConfigError, ConfigErrors};

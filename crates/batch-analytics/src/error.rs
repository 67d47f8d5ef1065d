//! Errors of the batch-analytics library.

use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;

/// Everything that can go wrong while registering the lake, querying it or writing
/// an analytics table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opening the lake, reading or writing one of its Delta tables, or publishing a
    /// file through the lake crate failed.
    #[error(transparent)]
    Lake(#[from] gpustream_lake::Error),

    /// The configuration (file, environment or flags) is invalid.
    #[error(transparent)]
    Config(#[from] gpustream_runtime::Error),

    /// Listing or deleting objects in the lake's store failed.
    #[error("object store error while {action}: {source}")]
    ObjectStore {
        /// What was being done, with the location.
        action: String,
        /// The underlying error.
        #[source]
        source: object_store::Error,
    },

    /// A lake table could not be registered with DataFusion.
    #[error("cannot register lake table `{table}` at {url}: {source}")]
    Register {
        /// Table name.
        table: String,
        /// Table URL.
        url: String,
        /// The underlying DataFusion error.
        #[source]
        source: DataFusionError,
    },

    /// A table the command needs does not exist in the lake (yet).
    #[error(
        "the lake at {lake} has no `{table}` table (no Delta table at {lake}{table}/); \
         has the stream processor written anything yet? (a lake written before the Delta \
         tables needs `batch-analytics convert` first)"
    )]
    MissingTable {
        /// Table name.
        table: String,
        /// Lake root URL.
        lake: String,
    },

    /// A user query could not be planned or executed: bad SQL, unknown table or column.
    #[error("query failed: {source}\n  tables in this lake: {tables}")]
    Query {
        /// The underlying DataFusion error (parser, planner or execution).
        #[source]
        source: DataFusionError,
        /// Comma-separated names of the registered tables, or a note that there are none,
        /// so a typo or a not-yet-written table is obvious from the message alone.
        tables: String,
    },

    /// An internal query (one this crate builds) failed.
    #[error("{context}: {source}")]
    DataFusion {
        /// What was being done.
        context: String,
        /// The underlying DataFusion error.
        #[source]
        source: DataFusionError,
    },

    /// Formatting or assembling Arrow data failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] ArrowError),

    /// Writing the results failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),

    /// A `--timezone` value is not an IANA timezone name.
    #[error("unknown timezone `{0}` (expected an IANA name such as `Europe/Berlin` or `UTC`)")]
    Timezone(String),

    /// Options that contradict each other or are out of range (e.g. `--from` after `--to`).
    #[error("invalid options: {0}")]
    Options(String),

    /// The allocation labels file is unreadable or has a bad row.
    #[error("{}", allocation_message(.file, *.line, .field.as_deref(), .message))]
    Allocations {
        /// The file.
        file: String,
        /// Its line (1-based; 0 when the file as a whole is at fault).
        line: usize,
        /// The column at fault, when one is.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },

    /// Upkeep of some tables failed (the others were maintained).
    #[error("maintenance failed for {}", .0.join("; "))]
    Maintenance(Vec<String>),
}

impl Error {
    /// Wraps an object-store error with what was being done.
    pub(crate) fn store(action: impl Into<String>) -> impl FnOnce(object_store::Error) -> Error {
        let action = action.into();
        move |source| Error::ObjectStore { action, source }
    }

    /// Wraps a DataFusion error from a query this crate built, with what it was doing.
    pub(crate) fn datafusion(context: impl Into<String>) -> impl FnOnce(DataFusionError) -> Error {
        let context = context.into();
        move |source| Error::DataFusion { context, source }
    }
}

/// `file:line: field `f`: message`, the parts that are known.
fn allocation_message(file: &str, line: usize, field: Option<&str>, message: &str) -> String {
    match (line, field) {
        (0, _) => format!("{file}: {message}"),
        (l, Some(f)) => format!("{file}:{l}: field `{f}`: {message}"),
        (l, None) => format!("{file}:{l}: {message}"),
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

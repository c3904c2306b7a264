//! Storage errors that say what was wrong, separated by what a caller can do
//! about them: a constraint the input broke (report it to the user), a
//! missing row, or a database that is unreachable or broken (retry/alert).

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The URL or path did not name a database we can open.
    #[error("cannot open database {target}: {reason}")]
    Open {
        /// The database, with any password removed.
        target: String,
        /// Why.
        reason: String,
    },
    /// A migration failed; the database is left at the last good version.
    #[error("migration failed: {0}")]
    Migrate(String),
    /// A unique or primary key would be duplicated.
    #[error("duplicate {constraint}: {message}")]
    Duplicate {
        /// Constraint or columns named by the database.
        constraint: String,
        /// The database's message.
        message: String,
    },
    /// A row refers to another that does not exist.
    #[error("missing referenced row ({constraint}): {message}")]
    MissingReference {
        /// Constraint named by the database (PostgreSQL), or empty (SQLite does not name it).
        constraint: String,
        /// The database's message.
        message: String,
    },
    /// A CHECK or NOT NULL constraint refused a value.
    #[error("value refused by {constraint}: {message}")]
    Refused {
        /// Constraint or column.
        constraint: String,
        /// The database's message.
        message: String,
    },
    /// The row asked for does not exist.
    #[error("{what} {key} not found")]
    NotFound {
        /// What kind of row.
        what: &'static str,
        /// Its key.
        key: String,
    },
    /// A stored value could not be turned back into a domain value.
    #[error("stored {field} is invalid: {reason}")]
    Corrupt {
        /// Column.
        field: &'static str,
        /// Why it does not parse.
        reason: String,
    },
    /// Anything else from the database or the connection.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        let sqlx::Error::Database(db) = &e else {
            return Self::Database(e);
        };
        let message = db.message().to_owned();
        // SQLite names the columns in the message ("UNIQUE constraint failed: t.a, t.b"),
        // PostgreSQL names the constraint.
        let constraint = db
            .constraint()
            .map(str::to_owned)
            .or_else(|| message.split_once(": ").map(|(_, cols)| cols.to_owned()))
            .unwrap_or_default();
        match db.kind() {
            ErrorKind::UniqueViolation => Self::Duplicate { constraint, message },
            ErrorKind::ForeignKeyViolation => Self::MissingReference { constraint, message },
            ErrorKind::NotNullViolation | ErrorKind::CheckViolation => Self::Refused { constraint, message },
            _ => Self::Database(e),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StorageError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(e.to_string())
    }
}

/// Result of a storage call.
pub type Result<T> = std::result::Result<T, StorageError>;

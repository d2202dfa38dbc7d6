//! Column decoding shared by the row mappers: 0/1 integers as booleans and
//! text as enums, with a bad value reported as a decode error of its column.

use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::ParseEnumError;

/// An `INTEGER 0/1` column as a bool (any non-zero value is true).
pub(crate) fn bool_col(row: &AnyRow, col: &'static str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

/// A text column holding an enum's `as_str` form.
pub(crate) fn enum_col<T>(row: &AnyRow, col: &'static str) -> Result<T, sqlx::Error>
where
    T: FromStr<Err = ParseEnumError>,
{
    let text: String = row.try_get(col)?;
    text.parse()
        .map_err(|e: ParseEnumError| sqlx::Error::ColumnDecode {
            index: col.to_owned(),
            source: Box::new(e),
        })
}

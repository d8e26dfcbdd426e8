//! Typed, zero-copy views of the Arrow columns a program reads, and the per-value facts
//! (text, number, boolean, time) atoms test.

use std::borrow::Cow;
use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{
    Array, BinaryViewArray, BooleanArray, LargeStringArray, OffsetSizeTrait, PrimitiveArray,
    StringArray, StringViewArray,
};
use arrow_buffer::{ArrowNativeType, NullBuffer};
use arrow_schema::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::error::{Error, Result};
use crate::program::AtomId;
use crate::table::FieldTable;

/// A string column in any of Arrow's three layouts.
#[derive(Clone, Copy)]
pub(crate) enum StrCol<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> StrCol<'a> {
    fn of(array: &'a dyn Array) -> Option<StrCol<'a>> {
        match array.data_type() {
            DataType::Utf8 => Some(StrCol::Utf8(array.as_string::<i32>())),
            DataType::LargeUtf8 => Some(StrCol::Large(array.as_string::<i64>())),
            DataType::Utf8View => Some(StrCol::View(array.as_string_view())),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrCol::Utf8(a) => a.len(),
            StrCol::Large(a) => a.len(),
            StrCol::View(a) => a.len(),
        }
    }

    /// Calls `f(row, bytes)` for the rows `start..end`, with `None` for a null: the fast
    /// way through a column when a test reads bytes.
    pub fn for_each_bytes(&self, start: usize, end: usize, f: impl FnMut(usize, Option<&'a [u8]>)) {
        match self {
            StrCol::Utf8(a) => {
                each_between_offsets(a.value_offsets(), a.value_data(), a.nulls(), start, end, f)
            }
            StrCol::Large(a) => {
                each_between_offsets(a.value_offsets(), a.value_data(), a.nulls(), start, end, f)
            }
            StrCol::View(a) => {
                let mut f = f;
                (start..end).for_each(|i| f(i, a.is_valid(i).then(|| a.value(i).as_bytes())));
            }
        }
    }

    /// Checks, for the rows `rows`, what reading the column assumes and Arrow data
    /// imported through the C interface does not promise: offsets within the data, and
    /// values in UTF-8. Null values are checked too, as Arrow's own validation does.
    pub fn validate(&self, column: &str, rows: Range<usize>) -> Result<()> {
        let checked = match self {
            StrCol::Utf8(a) => {
                check_between_offsets(&a.value_offsets()[rows.start..=rows.end], a.value_data())
            }
            StrCol::Large(a) => {
                check_between_offsets(&a.value_offsets()[rows.start..=rows.end], a.value_data())
            }
            StrCol::View(a) => {
                // Built as binary views, the layout is validated; then each value is read.
                let a = a.slice(rows.start, rows.len());
                let data = a.to_data().into_builder().data_type(DataType::BinaryView).build();
                data.map_err(|e| Invalid::Layout(e.to_string())).and_then(|data| {
                    let values = BinaryViewArray::from(data);
                    match values.iter().flatten().find(|v| std::str::from_utf8(v).is_err()) {
                        Some(value) => Err(Invalid::Utf8(value.to_vec())),
                        None => Ok(()),
                    }
                })
            }
        };
        checked.map_err(|invalid| invalid.into_error(column))
    }

    /// Reports (row within the chunk, atom) for `table`'s atoms true on the rows
    /// `start..end`; false, reporting nothing, unless the table searches values in bulk and
    /// can on these (see [`FieldTable::eval_bulk`]).
    pub fn eval_bulk(
        &self,
        table: &FieldTable,
        start: usize,
        end: usize,
        hit: &mut impl FnMut(usize, AtomId),
    ) -> bool {
        let nulls = self.nulls();
        let valid = |r: usize| nulls.is_none_or(|n| n.is_valid(start + r));
        match self {
            StrCol::Utf8(a) => {
                table.eval_bulk(&a.value_offsets()[start..=end], a.value_data(), valid, hit)
            }
            StrCol::Large(a) => {
                table.eval_bulk(&a.value_offsets()[start..=end], a.value_data(), valid, hit)
            }
            StrCol::View(_) => false,
        }
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            StrCol::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            StrCol::Large(a) => a.is_valid(i).then(|| a.value(i)),
            StrCol::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }

    /// The value of row `i`, which the caller knows is valid (not null).
    pub fn valid_value(&self, i: usize) -> &'a str {
        match *self {
            StrCol::Utf8(a) => a.value(i),
            StrCol::Large(a) => a.value(i),
            StrCol::View(a) => a.value(i),
        }
    }

    pub fn nulls(&self) -> Option<&'a NullBuffer> {
        match *self {
            StrCol::Utf8(a) => a.nulls(),
            StrCol::Large(a) => a.nulls(),
            StrCol::View(a) => a.nulls(),
        }
    }
}

fn each_between_offsets<'a, O: OffsetSizeTrait>(
    offsets: &'a [O],
    data: &'a [u8],
    nulls: Option<&NullBuffer>,
    start: usize,
    end: usize,
    mut f: impl FnMut(usize, Option<&'a [u8]>),
) {
    let bytes = |i: usize| &data[offsets[i].as_usize()..offsets[i + 1].as_usize()];
    match nulls {
        None => (start..end).for_each(|i| f(i, Some(bytes(i)))),
        Some(nulls) => (start..end).for_each(|i| f(i, nulls.is_valid(i).then(|| bytes(i)))),
    }
}

/// What is wrong with a string column: its layout, or a value (its bytes).
pub(crate) enum Invalid {
    Layout(String),
    Utf8(Vec<u8>),
}

/// Bytes of an invalid value shown in an error, at most.
const SHOWN_BYTES: usize = 60;

impl Invalid {
    fn into_error(self, column: &str) -> Error {
        let column = column.to_string();
        match self {
            Invalid::Layout(reason) => Error::InvalidColumn { column, reason },
            Invalid::Utf8(value) => {
                let mut shown = value[..value.len().min(SHOWN_BYTES)].escape_ascii().to_string();
                if value.len() > SHOWN_BYTES {
                    shown.push_str("...");
                }
                Error::InvalidUtf8 { column, value: shown }
            }
        }
    }
}

pub(crate) fn check_between_offsets<O: OffsetSizeTrait>(
    offsets: &[O],
    data: &[u8],
) -> std::result::Result<(), Invalid> {
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else { return Ok(()) };
    let (first, last) = (first.as_usize(), last.as_usize());
    // Without early exits, so that both loops vectorize.
    let ordered = offsets.windows(2).fold(true, |ok, w| ok & (w[0] <= w[1]));
    if !ordered || last > data.len() {
        let reason = format!("offsets out of order or past the {} bytes of data", data.len());
        return Err(Invalid::Layout(reason));
    }
    // The fast ways: ASCII bytes (then every offset is a character boundary), or all the
    // values' bytes UTF-8 at once and each offset on a character boundary (a byte that does
    // not continue a UTF-8 sequence).
    let bytes = &data[first..last];
    let ascii = bytes.iter().fold(0u8, |high, &b| high | b) < 0x80;
    let starts_char = |o: &O| data.get(o.as_usize()).is_none_or(|&b| (b as i8) >= -0x40);
    if ascii || (std::str::from_utf8(bytes).is_ok() && offsets.iter().all(starts_char)) {
        return Ok(());
    }
    let mut values = offsets.windows(2).map(|w| &data[w[0].as_usize()..w[1].as_usize()]);
    match values.find(|v| std::str::from_utf8(v).is_err()) {
        Some(value) => Err(Invalid::Utf8(value.to_vec())),
        None => Ok(()),
    }
}

/// One column as the engine reads it. Integer, float and time columns are widened once
/// per batch so that atoms compare against one representation.
pub(crate) enum Col<'a> {
    /// Arrow's `Null` type: every row absent.
    AllNull,
    /// A column of a type no atom can read, bound to a field that is only tested for
    /// presence (`null`, `exists`).
    Present(&'a dyn Array),
    Str(StrCol<'a>),
    /// Dictionary-encoded strings: atoms run once per dictionary value. A null key is
    /// [`NULL_KEY`].
    Dict {
        keys: Cow<'a, [u32]>,
        values: StrCol<'a>,
    },
    Int(Vec<Option<i128>>),
    Float(Vec<Option<f64>>),
    Bool(&'a BooleanArray),
    Time(Vec<Option<NaiveDateTime>>),
}

fn widen<T: ArrowPrimitiveType, U>(
    array: &dyn Array,
    f: impl Fn(T::Native) -> U,
) -> Vec<Option<U>> {
    array.as_primitive::<T>().iter().map(|v| v.map(&f)).collect()
}

/// The key of a null entry of a dictionary-encoded column.
pub(crate) const NULL_KEY: u32 = u32::MAX;

/// The keys of a dictionary-encoded column as indexes into its values, a null entry as
/// [`NULL_KEY`]; `Err` with the first key (not null) past the values. 32-bit keys without
/// nulls are the key buffer itself: a copy of a batch of 10M rows would be 40 MB written,
/// and paged in, before any matching.
fn dict_keys<'a, K: ArrowDictionaryKeyType>(
    keys: &'a PrimitiveArray<K>,
    values: usize,
) -> std::result::Result<Cow<'a, [u32]>, String> {
    let raw = keys.values();
    let past = |k: &K::Native| k.as_usize() >= values.min(NULL_KEY as usize);
    // Checked without an early exit, so that the loop vectorizes (a negative key is past).
    let bad = match keys.nulls() {
        None => raw.iter().fold(false, |bad, k| bad | past(k)),
        Some(nulls) => raw.iter().zip(nulls.iter()).fold(false, |bad, (k, v)| bad | (v & past(k))),
    };
    if bad {
        let (_, key) = raw.iter().enumerate().find(|&(i, k)| keys.is_valid(i) && past(k)).unwrap();
        return Err(format!("{key:?}"));
    }
    Ok(match keys.nulls() {
        None if std::mem::size_of::<K::Native>() == 4 => Cow::Borrowed(raw.inner().typed_data()),
        None => raw.iter().map(|k| k.as_usize() as u32).collect(),
        Some(nulls) => raw
            .iter()
            .zip(nulls.iter())
            .map(|(k, valid)| if valid { k.as_usize() as u32 } else { NULL_KEY })
            .collect(),
    })
}

/// The UTC time `value` (counted in `unit`) after 1970-01-01; None out of chrono's range.
pub fn epoch_time(value: i64, unit: TimeUnit) -> Option<NaiveDateTime> {
    let t = match unit {
        TimeUnit::Second => DateTime::from_timestamp(value, 0),
        TimeUnit::Millisecond => DateTime::from_timestamp_millis(value),
        TimeUnit::Microsecond => DateTime::from_timestamp_micros(value),
        TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(value)),
    };
    t.map(|t| t.naive_utc())
}

/// The values of a dictionary-encoded string column, validated; None for any other column.
pub(crate) fn dictionary_values<'a>(
    name: &str,
    array: &'a dyn Array,
) -> Result<Option<StrCol<'a>>> {
    let DataType::Dictionary(..) = array.data_type() else { return Ok(None) };
    let Some(values) = StrCol::of(array.as_any_dictionary().values().as_ref()) else {
        return Ok(None);
    };
    values.validate(name, 0..values.len())?;
    Ok(Some(values))
}

/// Dictionaries of at most this many values have their values read and tested by key.
const MAX_KEY_SLOTS: usize = 1 << 16;

impl<'a> Col<'a> {
    /// Where the value of `row` is kept when a chunk's values are read once each, if not by
    /// row: by key for a small dictionary (a null key is past the values).
    pub fn key_slot(&self, row: usize) -> Option<usize> {
        match self {
            Col::Dict { keys, values } if values.len() <= MAX_KEY_SLOTS => {
                Some((keys[row] as usize).min(values.len()))
            }
            _ => None,
        }
    }

    pub fn new(name: &str, array: &'a dyn Array) -> Result<Col<'a>> {
        if let Some(s) = StrCol::of(array) {
            // Validated chunk by chunk, when matched (`StrCol::validate`).
            return Ok(Col::Str(s));
        }
        let unsupported = || Error::UnsupportedType {
            column: name.to_string(),
            data_type: array.data_type().to_string(),
        };
        Ok(match array.data_type() {
            DataType::Null => Col::AllNull,
            DataType::Dictionary(key, _) => {
                let values = dictionary_values(name, array)?.ok_or_else(unsupported)?;
                let n = values.len();
                let keys = match key.as_ref() {
                    DataType::Int8 => dict_keys(array.as_dictionary::<Int8Type>().keys(), n),
                    DataType::Int16 => dict_keys(array.as_dictionary::<Int16Type>().keys(), n),
                    DataType::Int32 => dict_keys(array.as_dictionary::<Int32Type>().keys(), n),
                    DataType::Int64 => dict_keys(array.as_dictionary::<Int64Type>().keys(), n),
                    DataType::UInt8 => dict_keys(array.as_dictionary::<UInt8Type>().keys(), n),
                    DataType::UInt16 => dict_keys(array.as_dictionary::<UInt16Type>().keys(), n),
                    DataType::UInt32 => dict_keys(array.as_dictionary::<UInt32Type>().keys(), n),
                    DataType::UInt64 => dict_keys(array.as_dictionary::<UInt64Type>().keys(), n),
                    _ => return Err(unsupported()),
                }
                .map_err(|key| Error::InvalidColumn {
                    column: name.to_string(),
                    reason: format!("dictionary key {key} past its {n} values"),
                })?;
                Col::Dict { keys, values }
            }
            DataType::Int8 => Col::Int(widen::<Int8Type, _>(array, i128::from)),
            DataType::Int16 => Col::Int(widen::<Int16Type, _>(array, i128::from)),
            DataType::Int32 => Col::Int(widen::<Int32Type, _>(array, i128::from)),
            DataType::Int64 => Col::Int(widen::<Int64Type, _>(array, i128::from)),
            DataType::UInt8 => Col::Int(widen::<UInt8Type, _>(array, i128::from)),
            DataType::UInt16 => Col::Int(widen::<UInt16Type, _>(array, i128::from)),
            DataType::UInt32 => Col::Int(widen::<UInt32Type, _>(array, i128::from)),
            DataType::UInt64 => Col::Int(widen::<UInt64Type, _>(array, i128::from)),
            DataType::Float32 => Col::Float(widen::<Float32Type, _>(array, f64::from)),
            DataType::Float64 => Col::Float(widen::<Float64Type, _>(array, |v| v)),
            DataType::Boolean => Col::Bool(array.as_boolean()),
            DataType::Timestamp(unit, _) => {
                let unit = *unit;
                let at = |v: i64| epoch_time(v, unit);
                Col::Time(
                    match unit {
                        TimeUnit::Second => widen::<TimestampSecondType, _>(array, at),
                        TimeUnit::Millisecond => widen::<TimestampMillisecondType, _>(array, at),
                        TimeUnit::Microsecond => widen::<TimestampMicrosecondType, _>(array, at),
                        TimeUnit::Nanosecond => widen::<TimestampNanosecondType, _>(array, at),
                    }
                    .into_iter()
                    .map(Option::flatten)
                    .collect(),
                )
            }
            DataType::Date32 => Col::Time(
                widen::<Date32Type, _>(array, |d| {
                    epoch_time(i64::from(d) * 86_400, TimeUnit::Second)
                })
                .into_iter()
                .map(Option::flatten)
                .collect(),
            ),
            DataType::Date64 => Col::Time(
                widen::<Date64Type, _>(array, |ms| epoch_time(ms, TimeUnit::Millisecond))
                    .into_iter()
                    .map(Option::flatten)
                    .collect(),
            ),
            _ => return Err(unsupported()),
        })
    }

    /// The value of row `i` as atoms see it; `None` when absent.
    pub fn value(&self, i: usize) -> Option<Value<'a>> {
        match self {
            Col::AllNull => None,
            Col::Present(a) => a.is_valid(i).then_some(Value::Opaque),
            Col::Str(s) => s.get(i).map(Value::Str),
            Col::Dict { keys, values } => (keys[i] != NULL_KEY)
                .then(|| values.get(keys[i] as usize))
                .flatten()
                .map(Value::Str),
            Col::Int(v) => v[i].map(Value::Int),
            Col::Float(v) => v[i].map(Value::Float),
            Col::Bool(b) => b.is_valid(i).then(|| Value::Bool(b.value(i))),
            Col::Time(v) => v[i].map(Value::Time),
        }
    }
}

/// One present event value.
#[derive(Clone, Copy)]
pub(crate) enum Value<'a> {
    Str(&'a str),
    Int(i128),
    Float(f64),
    Bool(bool),
    Time(NaiveDateTime),
    /// A present value of a type only presence tests read.
    Opaque,
}

/// A number read from an event: integers stay exact.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    Int(i128),
    Float(f64),
}

impl<'a> Value<'a> {
    /// The text string tests see: strings, integers in decimal, booleans as `true`/`false`.
    pub fn text(&self) -> Option<Cow<'a, str>> {
        match *self {
            Value::Str(s) => Some(Cow::Borrowed(s)),
            Value::Int(i) => Some(Cow::Owned(i.to_string())),
            Value::Bool(b) => Some(Cow::Borrowed(if b { "true" } else { "false" })),
            Value::Float(_) | Value::Time(_) | Value::Opaque => None,
        }
    }

    pub fn number(&self) -> Option<Num> {
        match *self {
            Value::Int(i) => Some(Num::Int(i)),
            Value::Float(f) => Some(Num::Float(f)),
            Value::Str(s) => parse_number(s),
            Value::Bool(_) | Value::Time(_) | Value::Opaque => None,
        }
    }

    pub fn time(&self) -> Option<NaiveDateTime> {
        match *self {
            Value::Time(t) => Some(t),
            Value::Str(s) => parse_iso8601(s),
            _ => None,
        }
    }
}

/// A decimal literal `^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$`, as docs/semantics.md says.
pub(crate) fn parse_number(s: &str) -> Option<Num> {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut is_int = true;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        is_int = false;
        frac_digits = digits(&mut i);
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        is_int = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    if is_int {
        if let Ok(v) = s.parse::<i128>() {
            return Some(Num::Int(v));
        }
    }
    s.parse::<f64>().ok().map(Num::Float)
}

/// ISO 8601 `YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]][Z|±HH:MM|±HHMM]]` in ASCII digits,
/// converted to UTC when an offset is given (docs/semantics.md).
pub(crate) fn parse_iso8601(s: &str) -> Option<NaiveDateTime> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$",
        )
        .expect("valid regex")
    });
    let c = re.captures(s)?;
    let n = |i: usize| c.get(i).map_or(Some(0), |m| m.as_str().parse::<u32>().ok());
    let date = NaiveDate::from_ymd_opt(c[1].parse().ok()?, n(2)?, n(3)?)?;
    let nanos = c.get(7).map_or(Some(0), |m| {
        let digits = &m.as_str()[..m.len().min(9)]; // nanoseconds: further digits dropped
        let scale = 10u32.pow(9 - digits.len() as u32);
        digits.parse::<u32>().ok().map(|v| v * scale)
    })?;
    let mut t = date.and_hms_nano_opt(n(4)?, n(5)?, n(6)?, nanos)?;
    if let Some(z) = c.get(8).map(|m| m.as_str()).filter(|z| *z != "Z") {
        let (hours, minutes) =
            (z[1..3].parse::<i64>().ok()?, z[z.len() - 2..].parse::<i64>().ok()?);
        if hours > 23 || minutes > 59 {
            return None;
        }
        let sign = if z.starts_with('-') { -1 } else { 1 };
        t = t.checked_sub_signed(chrono::Duration::minutes(sign * (hours * 60 + minutes)))?;
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("4688"), Some(Num::Int(4688)));
        assert_eq!(parse_number("-1.5e3"), Some(Num::Float(-1500.0)));
        assert_eq!(parse_number(".5"), Some(Num::Float(0.5)));
        for bad in ["", " 1", "1 ", "0x10", "1e", ".", "+", "inf", "nan", "1_000"] {
            assert_eq!(parse_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn string_columns_are_checked_for_utf8_value_by_value() {
        let check = |values: &[&[u8]]| {
            let array = arrow_array::BinaryArray::from_iter_values(values);
            let offsets: Vec<i32> = array.value_offsets().to_vec();
            check_between_offsets(&offsets, array.value_data())
                .map_err(|e| e.into_error("A").to_string())
        };
        assert!(check(&[b"ok", "\u{4e2d}".as_bytes(), b""]).is_ok());
        // Each half of one character: the bytes together are UTF-8, the values are not.
        let err = check(&[b"\xe4", b"\xb8\xad"]).unwrap_err();
        assert_eq!(err, r#"column "A" holds a value that is not UTF-8: "\xe4""#);
        assert!(check(&[b"x", b"ends in \xc3"]).unwrap_err().ends_with(r#"ends in \xc3""#));
        let layout = check_between_offsets(&[0, 4, 2], b"abcd").map_err(|e| e.into_error("A"));
        assert!(matches!(layout, Err(Error::InvalidColumn { .. })));
    }

    #[test]
    fn iso8601() {
        for offset in ["+01:00", "+0100"] {
            let t = parse_iso8601(&format!("2024-03-05T23:30:00{offset}")).unwrap();
            assert_eq!(t.to_string(), "2024-03-05 22:30:00");
        }
        for bad in ["+01", "+010", "+2400", "+00:60"] {
            assert!(parse_iso8601(&format!("2024-03-05T23:30:00{bad}")).is_none(), "{bad}");
        }
        // Other digits than ASCII are not the form (nor a fraction to cut at 9 bytes).
        assert!(parse_iso8601("2024-03-05T23:30:00.\u{661}\u{662}\u{663}\u{664}\u{665}Z").is_none());
        assert_eq!(parse_iso8601("2024-03-05").unwrap().to_string(), "2024-03-05 00:00:00");
        assert!(parse_iso8601("2024-13-05").is_none());
        assert!(parse_iso8601("yesterday").is_none());
    }
}

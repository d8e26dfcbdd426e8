//! JSON Lines of a record batch, for `sigmarrow scan`: one compact JSON object per row, its
//! fields in column order, each line ending in a newline.
//!
//! Values are written as Python's orjson wrote what pyarrow's `to_pylist` gives (the writer
//! this replaces), except where that was a quirk (docs/scan.md, "How JSON Lines writes
//! values"): strings escaped as JSON requires (other characters as they are, UTF-8); NaN
//! and infinities as null; float32 in the shortest digits that read back as the same
//! float32; binary as lower-case hex; timestamps as `2024-01-01T00:00:00.250000+00:00`
//! (local time of the column's zone and its offset; no offset without a zone; the fraction
//! left out when zero, 9 digits only below the microsecond), dates as `2024-01-01`, times as
//! `12:00:00` (fraction likewise); lists as arrays, structs as objects, maps as arrays of
//! [key, value]; anything else (decimals, durations, intervals, unions, ...) as a string of
//! Arrow's text.

use arrow_array::cast::AsArray;
use arrow_array::timezone::Tz;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Date64Type, Float16Type, Float32Type, Float64Type, Int16Type,
    Int32Type, Int64Type, Int8Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayAccessor, GenericListArray, LargeBinaryArray, OffsetSizeTrait, PrimitiveArray,
    RecordBatch,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer};
use arrow_cast::cast;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, TimeUnit};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike};
use sigmarrow_core::epoch_time;

/// Why a value cannot be written (the caller names the column).
type Result<T> = std::result::Result<T, String>;

/// The lines of `batch`. With `skip_nulls_except`, a null value is left out of its row's
/// object unless its column is one of these; without it, every null is written.
pub fn json_lines(
    batch: &RecordBatch,
    skip_nulls_except: Option<&[String]>,
) -> Result<LargeBinaryArray> {
    let columns = batch
        .schema_ref()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            let name = field.name();
            Ok(Column {
                name,
                key: [json_string(name), b":".to_vec()].concat(),
                nulls: array.logical_nulls(),
                skip_null: skip_nulls_except.is_some_and(|keep| !keep.contains(name)),
                value: encoder(array.as_ref()).map_err(|e| named(name, e))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut out = Vec::new();
    let mut offsets = Vec::with_capacity(batch.num_rows() + 1);
    offsets.push(0i64);
    for row in 0..batch.num_rows() {
        out.push(b'{');
        let mut first = true;
        for column in &columns {
            let null = column.nulls.as_ref().is_some_and(|n| n.is_null(row));
            if null && column.skip_null {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&column.key);
            column.value.encode(row, &mut out).map_err(|e| named(column.name, e))?;
        }
        out.extend_from_slice(b"}\n");
        offsets.push(out.len() as i64);
    }
    let offsets = OffsetBuffer::new(offsets.into());
    Ok(LargeBinaryArray::new(offsets, Buffer::from_vec(out), None))
}

/// A top-level column: its key (`"name":`), where it is null, and its values.
struct Column<'a> {
    name: &'a str,
    key: Vec<u8>,
    nulls: Option<NullBuffer>,
    skip_null: bool,
    value: Box<dyn Encode + 'a>,
}

fn named(column: &str, reason: String) -> String {
    format!("column {column:?}: {reason}")
}

/// Writes the JSON of one value of an array.
trait Encode {
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> Result<()>;
}

/// `null` where the array is null, else its encoder's value.
struct Nullable<'a> {
    nulls: Option<NullBuffer>,
    inner: Box<dyn Encode + 'a>,
}

impl Encode for Nullable<'_> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> Result<()> {
        if self.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            out.extend_from_slice(b"null");
            Ok(())
        } else {
            self.inner.encode(row, out)
        }
    }
}

/// The encoder of `array`'s values, nulls written as `null`.
fn encoder(array: &dyn Array) -> Result<Box<dyn Encode + '_>> {
    let nulls = array.logical_nulls();
    let inner = non_null(array)?;
    Ok(match nulls {
        None => inner,
        nulls => Box::new(Nullable { nulls, inner }),
    })
}

/// The encoder of `array`'s values where they are not null.
fn non_null(array: &dyn Array) -> Result<Box<dyn Encode + '_>> {
    Ok(match array.data_type() {
        DataType::Null => Box::new(Each(|_, out: &mut Vec<u8>| {
            out.extend_from_slice(b"null");
            Ok(())
        })),
        DataType::Boolean => values(array.as_boolean(), number),
        DataType::Int8 => values(array.as_primitive::<Int8Type>(), number),
        DataType::Int16 => values(array.as_primitive::<Int16Type>(), number),
        DataType::Int32 => values(array.as_primitive::<Int32Type>(), number),
        DataType::Int64 => values(array.as_primitive::<Int64Type>(), number),
        DataType::UInt8 => values(array.as_primitive::<UInt8Type>(), number),
        DataType::UInt16 => values(array.as_primitive::<UInt16Type>(), number),
        DataType::UInt32 => values(array.as_primitive::<UInt32Type>(), number),
        DataType::UInt64 => values(array.as_primitive::<UInt64Type>(), number),
        DataType::Float16 => {
            values(array.as_primitive::<Float16Type>(), |out, v| number(out, v.to_f32()))
        }
        DataType::Float32 => values(array.as_primitive::<Float32Type>(), number),
        DataType::Float64 => values(array.as_primitive::<Float64Type>(), number),
        DataType::Utf8 => values(array.as_string::<i32>(), string),
        DataType::LargeUtf8 => values(array.as_string::<i64>(), string),
        DataType::Utf8View => values(array.as_string_view(), string),
        DataType::Binary => values(array.as_binary::<i32>(), hex),
        DataType::LargeBinary => values(array.as_binary::<i64>(), hex),
        DataType::BinaryView => values(array.as_binary_view(), hex),
        DataType::FixedSizeBinary(_) => values(array.as_fixed_size_binary(), hex),
        DataType::Date32 => {
            let values = array.as_primitive::<Date32Type>();
            Box::new(Each(|row, out: &mut Vec<u8>| {
                let days = values.value(row).checked_add(UNIX_EPOCH_CE);
                let date = days.and_then(NaiveDate::from_num_days_from_ce_opt);
                let date = date.ok_or_else(out_of_range)?;
                quoted(out, |out| write_date(out, date));
                Ok(())
            }))
        }
        DataType::Date64 => {
            let values = array.as_primitive::<Date64Type>();
            Box::new(Each(|row, out: &mut Vec<u8>| {
                let time = since_epoch(values.value(row), TimeUnit::Millisecond)?;
                quoted(out, |out| write_date(out, time.date()));
                Ok(())
            }))
        }
        DataType::Time32(unit @ TimeUnit::Second) => {
            time(array.as_primitive::<Time32SecondType>(), *unit)
        }
        DataType::Time32(unit) => time(array.as_primitive::<Time32MillisecondType>(), *unit),
        DataType::Time64(unit @ TimeUnit::Microsecond) => {
            time(array.as_primitive::<Time64MicrosecondType>(), *unit)
        }
        DataType::Time64(unit) => time(array.as_primitive::<Time64NanosecondType>(), *unit),
        DataType::Timestamp(unit, zone) => {
            let values: &[i64] = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().values(),
                TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().values(),
                TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().values(),
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().values(),
            };
            let unit = *unit;
            match zone {
                None => Box::new(Each(move |row, out: &mut Vec<u8>| {
                    let time = since_epoch(values[row], unit)?;
                    quoted(out, |out| write_datetime(out, time));
                    Ok(())
                })),
                Some(zone) => {
                    let zone: Tz = zone.parse().map_err(|e| format!("time zone {zone:?}: {e}"))?;
                    Box::new(Each(move |row, out: &mut Vec<u8>| {
                        let local = zone.from_utc_datetime(&since_epoch(values[row], unit)?);
                        quoted(out, |out| {
                            write_datetime(out, local.naive_local());
                            write_offset(out, local.offset().fix().local_minus_utc());
                        });
                        Ok(())
                    }))
                }
            }
        }
        DataType::List(_) => list(array.as_list::<i32>())?,
        DataType::LargeList(_) => list(array.as_list::<i64>())?,
        DataType::FixedSizeList(_, size) => {
            let lists = array.as_fixed_size_list();
            let (items, size) = (encoder(lists.values().as_ref())?, *size as usize);
            Box::new(Each(move |row, out: &mut Vec<u8>| {
                let start = lists.value_offset(row) as usize;
                items_of(out, &*items, start..start + size)
            }))
        }
        DataType::Struct(fields) => {
            let children = array.as_struct().columns().iter().zip(fields.iter());
            let children = children
                .map(|(child, field)| Ok((json_string(field.name()), encoder(child.as_ref())?)))
                .collect::<Result<Vec<_>>>()?;
            Box::new(Each(move |row, out: &mut Vec<u8>| {
                out.push(b'{');
                for (i, (key, value)) in children.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(key);
                    out.push(b':');
                    value.encode(row, out)?;
                }
                out.push(b'}');
                Ok(())
            }))
        }
        DataType::Map(_, _) => {
            // [[key, value], ...], as pyarrow gives a map (its keys need not be strings).
            let map = array.as_map();
            let (keys, values) = (encoder(map.keys().as_ref())?, encoder(map.values().as_ref())?);
            Box::new(Each(move |row, out: &mut Vec<u8>| {
                let offsets = map.value_offsets();
                out.push(b'[');
                for entry in offsets[row] as usize..offsets[row + 1] as usize {
                    if entry > offsets[row] as usize {
                        out.push(b',');
                    }
                    out.push(b'[');
                    keys.encode(entry, out)?;
                    out.push(b',');
                    values.encode(entry, out)?;
                    out.push(b']');
                }
                out.push(b']');
                Ok(())
            }))
        }
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary();
            // The keys as indexes (normalized_keys refuses the empty values of an all-null
            // column, which Parquet gives).
            let keys = cast(dictionary.keys(), &DataType::UInt64).map_err(|e| e.to_string())?;
            let keys = keys.as_primitive::<UInt64Type>().clone();
            let values = encoder(dictionary.values())?;
            Box::new(Each(move |row, out: &mut Vec<u8>| {
                values.encode(keys.value(row) as usize, out)
            }))
        }
        _ => {
            let text = ArrayFormatter::try_new(array, &FormatOptions::default())
                .map_err(|e| e.to_string())?;
            Box::new(Each(move |row, out: &mut Vec<u8>| {
                string(out, &text.value(row).try_to_string().map_err(|e| e.to_string())?);
                Ok(())
            }))
        }
    })
}

/// An encoder as a closure.
struct Each<F>(F);

impl<F: Fn(usize, &mut Vec<u8>) -> Result<()>> Encode for Each<F> {
    fn encode(&self, row: usize, out: &mut Vec<u8>) -> Result<()> {
        (self.0)(row, out)
    }
}

/// The encoder that writes each of `values` with `write`.
fn values<'a, A>(values: A, write: impl Fn(&mut Vec<u8>, A::Item) + 'a) -> Box<dyn Encode + 'a>
where
    A: ArrayAccessor + 'a,
{
    Box::new(Each(move |row, out: &mut Vec<u8>| {
        write(out, values.value(row));
        Ok(())
    }))
}

fn list<O: OffsetSizeTrait>(lists: &GenericListArray<O>) -> Result<Box<dyn Encode + '_>> {
    let items = encoder(lists.values().as_ref())?;
    Ok(Box::new(Each(move |row: usize, out: &mut Vec<u8>| {
        let offsets: &[O] = lists.value_offsets();
        items_of(out, &*items, offsets[row].as_usize()..offsets[row + 1].as_usize())
    })))
}

/// `[item, ...]` of the items in `rows`.
fn items_of(out: &mut Vec<u8>, items: &dyn Encode, rows: std::ops::Range<usize>) -> Result<()> {
    out.push(b'[');
    for (i, row) in rows.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        items.encode(row, out)?;
    }
    out.push(b']');
    Ok(())
}

/// Times of day, counted in `unit`.
fn time<T>(values: &PrimitiveArray<T>, unit: TimeUnit) -> Box<dyn Encode + '_>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    Box::new(Each(move |row, out: &mut Vec<u8>| {
        let (seconds, nanos) = split(values.value(row).into(), unit);
        let time = u32::try_from(seconds)
            .ok()
            .and_then(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, nanos))
            .ok_or_else(out_of_range)?;
        quoted(out, |out| write_time(out, time));
        Ok(())
    }))
}

/// The days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_CE: i32 = 719_163;

/// Seconds and nanoseconds of `value` counted in `unit` (nanoseconds never negative).
fn split(value: i64, unit: TimeUnit) -> (i64, u32) {
    let per_second = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let nanos = value.rem_euclid(per_second) * (1_000_000_000 / per_second);
    (value.div_euclid(per_second), nanos as u32)
}

/// The UTC time `value` (in `unit`) after 1970-01-01, as the engine reads it.
fn since_epoch(value: i64, unit: TimeUnit) -> Result<NaiveDateTime> {
    epoch_time(value, unit).ok_or_else(out_of_range)
}

fn out_of_range() -> String {
    "a value out of the range of dates".to_string()
}

fn write_date(out: &mut Vec<u8>, date: NaiveDate) {
    if date.year() < 0 {
        out.push(b'-');
    }
    digits(out, date.year().unsigned_abs(), 4);
    out.push(b'-');
    digits(out, date.month(), 2);
    out.push(b'-');
    digits(out, date.day(), 2);
}

fn write_datetime(out: &mut Vec<u8>, time: NaiveDateTime) {
    write_date(out, time.date());
    out.push(b'T');
    write_time(out, time.time());
}

/// `HH:MM:SS`, then the fraction: none when zero, else 6 digits (9 below the microsecond).
fn write_time(out: &mut Vec<u8>, time: NaiveTime) {
    for (i, part) in [time.hour(), time.minute(), time.second()].into_iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        digits(out, part, 2);
    }
    match time.nanosecond() {
        0 => {}
        nanos if nanos.is_multiple_of(1_000) => {
            out.push(b'.');
            digits(out, nanos / 1_000, 6);
        }
        nanos => {
            out.push(b'.');
            digits(out, nanos, 9);
        }
    }
}

/// `+HH:MM` (`:SS` too where an old local time has seconds).
fn write_offset(out: &mut Vec<u8>, seconds: i32) {
    out.push(if seconds < 0 { b'-' } else { b'+' });
    let seconds = seconds.unsigned_abs();
    digits(out, seconds / 3600, 2);
    out.push(b':');
    digits(out, seconds / 60 % 60, 2);
    if !seconds.is_multiple_of(60) {
        out.push(b':');
        digits(out, seconds % 60, 2);
    }
}

/// `value` in decimal, zero-padded to `width` digits.
fn digits(out: &mut Vec<u8>, mut value: u32, width: usize) {
    let mut text = [b'0'; 10];
    let mut start = text.len();
    while value > 0 || text.len() - start < width {
        start -= 1;
        text[start] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out.extend_from_slice(&text[start..]);
}

/// A JSON string of what `write` writes (only digits and signs: nothing to escape).
fn quoted(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    out.push(b'"');
    write(out);
    out.push(b'"');
}

/// A number or boolean as serde_json writes it (NaN and infinities as null).
fn number(out: &mut Vec<u8>, value: impl serde::Serialize) {
    serde_json::to_writer(out, &value).expect("numbers always serialize");
}

fn string(out: &mut Vec<u8>, value: &str) {
    serde_json::to_writer(out, value).expect("strings always serialize");
}

fn json_string(value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 2);
    string(&mut out, value);
    out
}

fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2 + 2);
    out.push(b'"');
    for &b in bytes {
        out.extend_from_slice(&[DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]);
    }
    out.push(b'"');
}

//! The thin Python binding of sigmarrow-core: convert arguments, release the GIL once
//! around the whole match, convert the result and the errors.

mod jsonl;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use arrow_array::{Int64Array, UInt32Array};
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;
use pyo3_arrow::{PyArray, PyRecordBatch};
use sigmarrow_core::{AtomId, Error, Matcher, Options, RuleId};

/// The `sigmarrow.errors` classes core errors become, imported with this module.
struct ErrorClasses {
    program: Py<PyType>,
    data: Py<PyType>,
    base: Py<PyType>,
}

static ERROR_CLASSES: PyOnceLock<ErrorClasses> = PyOnceLock::new();

/// The one conversion of core errors into Python exceptions.
fn to_py(py: Python<'_>, err: Error) -> PyErr {
    let classes = ERROR_CLASSES.get(py).expect("imported when the module was");
    let class = match err {
        Error::Malformed { .. }
        | Error::Version { .. }
        | Error::Regex { .. }
        | Error::TooDeep { .. } => &classes.program,
        Error::UnsupportedType { .. } | Error::InvalidUtf8 { .. } | Error::InvalidColumn { .. } => {
            &classes.data
        }
        Error::Threads { .. } => &classes.base,
    };
    PyErr::from_type(class.bind(py).clone(), err.to_string())
}

/// Where and why the engine last panicked, recorded by the panic hook (which prints
/// nothing: the message travels in the Python exception).
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// Runs `f`, turning a panic (a bug of the engine, never the user's) into a
/// `SigmarrowError` rather than pyo3's `PanicException`, which no `except Exception` sees.
fn guarded<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked(py)))
}

fn panicked(py: Python<'_>) -> PyErr {
    let classes = ERROR_CLASSES.get(py).expect("imported when the module was");
    let message = std::mem::take(&mut *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()));
    let message = format!("internal error of the engine (please report it): {message}");
    PyErr::from_type(classes.base.bind(py).clone(), message)
}

fn ids(atoms: Vec<AtomId>) -> Vec<u32> {
    atoms.into_iter().map(AtomId::as_u32).collect()
}

/// A compiled matcher, built from a program's JSON text.
#[pyclass(frozen, module = "sigmarrow._engine")]
struct Engine {
    inner: Matcher,
}

#[pymethods]
impl Engine {
    /// `prefilter` and `memo` switch the engine's shortcuts (results never change).
    #[new]
    #[pyo3(signature = (program_json, *, prefilter = true, memo = true))]
    fn new(py: Python<'_>, program_json: &str, prefilter: bool, memo: bool) -> PyResult<Self> {
        guarded(py, || {
            let options = Options { prefilter, memo };
            let inner = Matcher::from_json(program_json, options).map_err(|e| to_py(py, e))?;
            Ok(Engine { inner })
        })
    }

    /// The rules the engine cannot run (they never match): (rule index, reason).
    fn rule_errors(&self, py: Python<'_>) -> PyResult<Vec<(u32, String)>> {
        guarded(py, || {
            let errors = self.inner.rule_errors().iter();
            Ok(errors.map(|(rule, e)| (rule.as_u32(), e.to_string())).collect())
        })
    }

    /// How the engine runs rule number `rule`: (needed sets, witness set or None, lazy
    /// atoms), as atom ids.
    #[allow(clippy::type_complexity)]
    fn rule_plan(
        &self,
        py: Python<'_>,
        rule: u32,
    ) -> PyResult<(Vec<Vec<u32>>, Option<Vec<u32>>, Vec<u32>)> {
        guarded(py, || {
            let plan = self.inner.rule_plan(RuleId::new(rule));
            let plan = plan.ok_or_else(|| PyIndexError::new_err(format!("no rule {rule}")))?;
            Ok((plan.needs.into_iter().map(ids).collect(), plan.witness.map(ids), ids(plan.lazy)))
        })
    }

    /// Matches record batches (rows numbered across them) and returns two pyarrow arrays:
    /// row (int64) and rule index (uint32), ordered by row then rule.
    fn match_batches(
        &self,
        py: Python<'_>,
        batches: Vec<PyRecordBatch>,
        keyword_columns: Vec<String>,
        threads: usize,
    ) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
        guarded(py, || {
            let batches: Vec<_> = batches.into_iter().map(PyRecordBatch::into_inner).collect();
            let hits = py
                .detach(|| self.inner.match_batches(&batches, &keyword_columns, threads))
                .map_err(|e| to_py(py, e))?;
            let rows = Int64Array::from_iter_values(hits.iter().map(|&(row, _)| row as i64));
            let rules = UInt32Array::from_iter_values(hits.iter().map(|&(_, r)| r.as_u32()));
            let rows = PyArray::from_array_ref(Arc::new(rows)).to_pyarrow(py)?.unbind();
            let rules = PyArray::from_array_ref(Arc::new(rules)).to_pyarrow(py)?.unbind();
            Ok((rows, rules))
        })
    }
}

/// The trigger literals of a glob or regex atom (given as JSON): the engine runs the check
/// only on values holding one of them (none: on every value). None for other atoms.
#[pyfunction]
fn check_triggers(py: Python<'_>, atom_json: &str) -> PyResult<Option<Vec<String>>> {
    guarded(py, || {
        let atom: sigmarrow_core::program::Atom = serde_json::from_str(atom_json).map_err(|e| {
            to_py(py, Error::Malformed { path: String::new(), reason: e.to_string() })
        })?;
        Ok(sigmarrow_core::check_triggers(&atom))
    })
}

/// The JSON Lines of a record batch (a large binary array, one line per row, each ending in
/// a newline); with `skip_nulls_except`, a null is left out unless its column is one of
/// these. A value that cannot be written raises `DataError` naming its column.
#[pyfunction]
#[pyo3(signature = (batch, skip_nulls_except = None))]
fn json_lines(
    py: Python<'_>,
    batch: PyRecordBatch,
    skip_nulls_except: Option<Vec<String>>,
) -> PyResult<Py<PyAny>> {
    guarded(py, || {
        let batch = batch.into_inner();
        let lines = py.detach(|| jsonl::json_lines(&batch, skip_nulls_except.as_deref()));
        let lines = lines.map_err(|reason| {
            let classes = ERROR_CLASSES.get(py).expect("imported when the module was");
            PyErr::from_type(classes.data.bind(py).clone(), reason)
        })?;
        Ok(PyArray::from_array_ref(Arc::new(lines)).to_pyarrow(py)?.unbind())
    })
}

/// Python's `str.casefold`, as the engine computes it.
#[pyfunction]
fn casefold(py: Python<'_>, text: &str) -> PyResult<String> {
    guarded(py, || Ok(sigmarrow_core::fold(text)))
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    ERROR_CLASSES.get_or_try_init(py, || -> PyResult<_> {
        let errors = py.import("sigmarrow.errors")?;
        let class = |name: &str| -> PyResult<Py<PyType>> {
            Ok(errors.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(ErrorClasses {
            program: class("ProgramError")?,
            data: class("DataError")?,
            base: class("SigmarrowError")?,
        })
    })?;
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string().replace('\n', " ");
    }));
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(casefold, m)?)?;
    m.add_function(wrap_pyfunction!(check_triggers, m)?)?;
    m.add_function(wrap_pyfunction!(json_lines, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! The thin Python binding of sigmarrow-core: convert arguments, release the GIL once
//! around the whole match, convert the result and the errors.

use std::sync::Arc;

use arrow_array::{Int64Array, UInt32Array};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3_arrow::{PyArray, PyRecordBatch};
use sigmarrow_core::{Error, Matcher, Options};

/// Raises the `sigmarrow.errors` exception matching a core error.
fn to_py(err: Error) -> PyErr {
    let class = match err {
        Error::Program(_) => "ProgramError",
        Error::UnsupportedType { .. } => "DataError",
    };
    Python::attach(|py| {
        match py.import("sigmarrow.errors").and_then(|m| m.getattr(class)) {
            Ok(cls) => PyErr::from_value(cls.call1((err.to_string(),)).unwrap_or_else(|e| e.into_value(py).into_bound(py).into_any())),
            Err(e) => PyRuntimeError::new_err(format!("{err} (and sigmarrow.errors failed to import: {e})")),
        }
    })
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
    fn new(program_json: &str, prefilter: bool, memo: bool) -> PyResult<Self> {
        let options = Options { prefilter, memo };
        Ok(Engine { inner: Matcher::from_json(program_json, options).map_err(to_py)? })
    }

    /// How the engine runs rule number `rule`: (needed sets, witness set or None, lazy
    /// atoms), as atom ids.
    #[allow(clippy::type_complexity)]
    fn rule_plan(&self, rule: usize) -> PyResult<(Vec<Vec<u32>>, Option<Vec<u32>>, Vec<u32>)> {
        let plan = self.inner.rule_plan(rule).ok_or_else(|| to_py(Error::Program(format!("no rule {rule}"))))?;
        Ok((plan.needs, plan.witness, plan.lazy))
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
        let batches: Vec<_> = batches.into_iter().map(PyRecordBatch::into_inner).collect();
        let hits = py
            .detach(|| self.inner.match_batches(&batches, &keyword_columns, threads))
            .map_err(to_py)?;
        let rows = Int64Array::from_iter_values(hits.iter().map(|&(row, _)| row as i64));
        let rules = UInt32Array::from_iter_values(hits.iter().map(|&(_, rule)| rule));
        let rows = PyArray::from_array_ref(Arc::new(rows)).to_pyarrow(py)?.unbind();
        let rules = PyArray::from_array_ref(Arc::new(rules)).to_pyarrow(py)?.unbind();
        Ok((rows, rules))
    }
}

/// The reason `pattern` does not compile as a Sigma `re` value with `flags`, or None.
#[pyfunction]
fn regex_error(pattern: &str, flags: &str) -> Option<String> {
    sigmarrow_core::build_regex(pattern, flags).err()
}

/// The trigger literals of a glob or regex atom (given as JSON): the engine runs the check
/// only on values holding one of them (none: on every value). None for other atoms.
#[pyfunction]
fn check_triggers(atom_json: &str) -> PyResult<Option<Vec<String>>> {
    let atom: sigmarrow_core::program::Atom =
        serde_json::from_str(atom_json).map_err(|e| to_py(Error::Program(e.to_string())))?;
    Ok(sigmarrow_core::check_triggers(&atom))
}

/// Python's `str.casefold`, as the engine computes it.
#[pyfunction]
fn casefold(text: &str) -> String {
    sigmarrow_core::fold(text)
}

#[pymodule]
fn _engine(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_function(wrap_pyfunction!(regex_error, m)?)?;
    m.add_function(wrap_pyfunction!(casefold, m)?)?;
    m.add_function(wrap_pyfunction!(check_triggers, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

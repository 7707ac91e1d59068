//! Code lengths of the latents under the model's own tables (spec 7.4, 8.5): the rate term
//! of the optimisation.

use crate::entropy::{CdfTable, UniformTables, MAX_ESCAPE_BITS};
use crate::fixed::zigzag;

/// `-log2 p` of every value under each table of a model, escapes included.
#[derive(Debug, Clone)]
pub(super) struct CodeLengths {
    tables: Vec<TableLengths>,
    /// Bits of each escape bit count `n` (the 32-symbol table) plus the `n` raw bits.
    escape_tail: Vec<f32>,
}

#[derive(Debug, Clone)]
struct TableLengths {
    /// Value of symbol 0.
    offset: i32,
    /// Bits of each non-escape symbol.
    symbols: Vec<f32>,
    /// Bits of the escape symbol.
    escape: f32,
}

impl CodeLengths {
    /// The lengths of `tables` (pairs of symbol-0 value and table, as in
    /// [`crate::model::Model::y_tables`]).
    pub(super) fn new(tables: &[(i32, CdfTable)], uniform: &UniformTables) -> Self {
        let tables = tables
            .iter()
            .map(|(offset, table)| {
                let n = table.len();
                TableLengths {
                    offset: *offset,
                    symbols: (0..n.saturating_sub(1))
                        .map(|s| table.bits(s) as f32)
                        .collect(),
                    escape: table.bits(n.saturating_sub(1)) as f32,
                }
            })
            .collect();
        let escape_tail = (0..=MAX_ESCAPE_BITS)
            .map(|n| (uniform.bit_count().bits(n as usize) + f64::from(n)) as f32)
            .collect();
        Self {
            tables,
            escape_tail,
        }
    }

    /// Bits of `value` coded with table `index` (what
    /// [`SymbolWriter::push_value`](crate::entropy::SymbolWriter::push_value) adds).
    #[inline]
    pub(super) fn bits(&self, index: usize, value: i32) -> f32 {
        let Some(t) = self.tables.get(index) else {
            return 0.0;
        };
        let s = i64::from(value) - i64::from(t.offset);
        if let Some(&b) = usize::try_from(s).ok().and_then(|s| t.symbols.get(s)) {
            return b;
        }
        let limit = (1i32 << MAX_ESCAPE_BITS) - 1;
        let u = zigzag(value.clamp(-limit, limit)) + 1;
        let n = (31 - u.leading_zeros()) as usize;
        t.escape + self.escape_tail.get(n).copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::SymbolWriter;

    #[test]
    fn lengths_are_what_the_writer_counts() {
        let table = CdfTable::from_frequencies(&[100, 30000, 20000, 15000, 436]).expect("table");
        let tables = vec![(-2, table)];
        let uniform = UniformTables::new();
        let lengths = CodeLengths::new(&tables, &uniform);
        for v in [-3, -2, -1, 0, 1, 2, 3, 17, -40000, 70000] {
            let mut w = SymbolWriter::new();
            w.push_value(&tables[0].1, tables[0].0, v, &uniform)
                .expect("push");
            let want = w.ideal_bits() as f32;
            assert!((lengths.bits(0, v) - want).abs() < 1e-4, "{v}");
        }
    }
}

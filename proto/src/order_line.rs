//! `domain::OrderLine` ↔ `OrderLine` on the wire: the one order-line type the
//! queue, the executors' log and the books database share. Reading checks what the
//! domain checks (a book id, 1 to `Quantity::MAX` copies).

use domain::order::Quantity;
use domain::{FieldError, OrderLine};

use crate::v1 as pb;

impl From<&OrderLine> for pb::OrderLine {
    fn from(line: &OrderLine) -> Self {
        Self { book_id: line.book_id.clone(), quantity: line.quantity.get() }
    }
}

/// An order's lines, all or none: at least one, each a book id and a quantity in
/// range. `field` names the list in the error (`lines`).
pub fn order_lines_from_proto(field: &str, lines: &[pb::OrderLine]) -> Result<Vec<OrderLine>, FieldError> {
    if lines.is_empty() {
        return Err(FieldError::new(field, "no_lines", "an order needs at least one line"));
    }
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            if line.book_id.is_empty() {
                return Err(FieldError::new(
                    format!("{field}[{index}].book_id"),
                    "blank_book_id",
                    "a line needs a book id",
                ));
            }
            let quantity = Quantity::new(i64::from(line.quantity), format!("{field}[{index}].quantity"))?;
            Ok(OrderLine { book_id: line.book_id.clone(), quantity })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(book_id: &str, quantity: u32) -> pb::OrderLine {
        pb::OrderLine { book_id: book_id.into(), quantity }
    }

    #[test]
    fn lines_cross_the_wire_unchanged() {
        let lines = order_lines_from_proto("lines", &[wire("4", 1), wire("20", 4)]).unwrap();
        let back: Vec<pb::OrderLine> = lines.iter().map(pb::OrderLine::from).collect();
        assert_eq!(back, [wire("4", 1), wire("20", 4)]);
    }

    #[test]
    fn an_unreadable_line_refuses_them_all_naming_it() {
        assert_eq!(order_lines_from_proto("lines", &[]).unwrap_err().code, "no_lines");
        let zero = order_lines_from_proto("lines", &[wire("4", 1), wire("20", 0)]).unwrap_err();
        assert_eq!((zero.field.as_str(), zero.code.as_str()), ("lines[1].quantity", "quantity_out_of_range"));
        let blank = order_lines_from_proto("lines", &[wire("", 1)]).unwrap_err();
        assert_eq!(blank.field, "lines[0].book_id");
    }
}

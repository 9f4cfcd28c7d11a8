//! The order summary: the books in the cart with editable quantities, and what the
//! order costs, repriced with the domain's `order_total` as the shopper edits.
//!
//! The quantity inputs (and the hidden book ids and titles) are part of the checkout
//! form, so the lines post with the rest of the request.

use domain::order::{order_total, OrderLine, GIFT_WRAPPING};
use domain::{Catalog, Money, Quantity, ShippingMethod};
use leptos::html::Input;
use leptos::prelude::*;

use super::field::{error_id, field_input_id, field_input_name, item_name_path, InlineError};
use super::state::{CheckoutState, SEED_CART};
use crate::catalog;
use domain::field::path;

/// What the order costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CartTotals {
    pub subtotal: Money,
    pub shipping: Money,
    pub gift_wrapping: Money,
    pub total: Money,
}

/// Prices `lines` (the lines with a valid quantity).
pub(crate) fn cart_totals(
    catalog: &Catalog,
    lines: &[OrderLine],
    shipping: ShippingMethod,
    gift_wrapping: bool,
) -> CartTotals {
    CartTotals {
        subtotal: lines.iter().filter_map(|line| line_total(catalog, line)).sum(),
        shipping: shipping.cost(),
        gift_wrapping: if gift_wrapping { GIFT_WRAPPING } else { Money::ZERO },
        total: order_total(catalog, lines, shipping, gift_wrapping),
    }
}

/// One line's price: the book's price times the quantity.
pub(crate) fn line_total(catalog: &Catalog, line: &OrderLine) -> Option<Money> {
    catalog.get(&line.book_id).map(|book| book.price().times(line.quantity.get()))
}

/// The totals of the form as it stands (reactive).
pub(crate) fn live_totals(state: CheckoutState) -> Memo<CartTotals> {
    Memo::new(move |_| cart_totals(catalog(), &state.order_lines(), state.shipping.get(), state.gift_wrapping.get()))
}

/// The cart and its totals.
#[component]
pub(crate) fn OrderSummary(state: CheckoutState, totals: Memo<CartTotals>) -> impl IntoView {
    let lines = SEED_CART
        .iter()
        .enumerate()
        .filter_map(|(index, book_id)| catalog().get(book_id).map(|book| (index, book)))
        .map(|(index, book)| {
            let field = state.quantities[index];
            let id = field_input_id(&path::item_quantity(index));
            let book_id = book.id.clone();
            let price = book.price();
            let quantity_input = NodeRef::<Input>::new();
            Effect::new(move |_| {
                if let Some(input) = quantity_input.get() {
                    field.adopt(input.value());
                }
            });
            let line_total = move || {
                let quantity = field.value.with(|text| super::state::parse_quantity(index, text)).ok();
                quantity.map_or_else(|| "—".to_owned(), |quantity: Quantity| price.times(quantity.get()).to_string())
            };
            view! {
                <li class="cart-line" data-book-id=book.id.clone()>
                    <input type="hidden" name=field_input_name(&path::item_id(index)) value=book.id.clone() />
                    <input type="hidden" name=field_input_name(&item_name_path(index)) value=book.title.clone() />
                    <div class="cart-book">
                        <p class="cart-title">{book.title.clone()}</p>
                        <p class="cart-author">{book.author.clone()}</p>
                        <p class="cart-unit-price">{format!("{price} each")}</p>
                    </div>
                    <div class="cart-quantity" class:has-error=move || field.error().is_some()>
                        <label for=id.clone()>
                            "Quantity"
                            <span class="visually-hidden">" of " {book.title.clone()}</span>
                        </label>
                        <input
                            node_ref=quantity_input
                            id=id.clone()
                            name=field_input_name(&path::item_quantity(index))
                            type="number"
                            inputmode="numeric"
                            min="1"
                            max=Quantity::MAX.to_string()
                            step="1"
                            required=true
                            autocomplete="off"
                            value=field.value.get_untracked()
                            aria-describedby=error_id(&id)
                            aria-invalid=move || field.error().map(|_| "true")
                            on:input=move |ev| {
                                field.touched.set(true);
                                field.input(event_target_value(&ev));
                            }
                        />
                    </div>
                    <p class="cart-line-total" id=format!("line-total-{book_id}")>{line_total}</p>
                    <InlineError id=id state=field />
                </li>
            }
        })
        .collect_view();
    let shipping_label = move || format!("Shipping ({})", state.shipping.get());
    view! {
        <h2 id="summary-heading">"Your order"</h2>
        <ul class="cart-lines">{lines}</ul>
        <dl class="totals">
            <div class="totals-row">
                <dt>"Subtotal"</dt>
                <dd id="summary-subtotal">{move || totals.get().subtotal.to_string()}</dd>
            </div>
            <div class="totals-row">
                <dt>{shipping_label}</dt>
                <dd id="summary-shipping">{move || totals.get().shipping.to_string()}</dd>
            </div>
            <Show when=move || state.gift_wrapping.get()>
                <div class="totals-row">
                    <dt>"Gift wrapping"</dt>
                    <dd id="summary-gift-wrapping">{move || totals.get().gift_wrapping.to_string()}</dd>
                </div>
            </Show>
            <div class="totals-row totals-total">
                <dt>"Total"</dt>
                <dd id="summary-total">{move || totals.get().total.to_string()}</dd>
            </div>
        </dl>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use domain::order::{parse_lines, RawItem};

    use super::*;

    fn lines(catalog: &Catalog, items: &[(&str, i64)]) -> Vec<OrderLine> {
        let raw: Vec<RawItem<'_>> = items.iter().map(|&(id, quantity)| RawItem { id, quantity }).collect();
        parse_lines(catalog, &raw).expect("valid lines")
    }

    #[test]
    fn the_seed_cart_costs_its_books_plus_standard_shipping() {
        let catalog = Catalog::embedded();
        let totals = cart_totals(&catalog, &lines(&catalog, &[("4", 1), ("1", 1)]), ShippingMethod::Standard, false);
        assert_eq!(totals.subtotal, Money::from_cents(1099 + 1899));
        assert_eq!(totals.shipping, Money::from_cents(499));
        assert_eq!(totals.gift_wrapping, Money::ZERO);
        assert_eq!(totals.total.to_string(), "€34.97");
    }

    #[test]
    fn totals_add_up_with_express_and_wrapping() {
        let catalog = Catalog::embedded();
        let totals = cart_totals(&catalog, &lines(&catalog, &[("4", 2), ("1", 1)]), ShippingMethod::Express, true);
        assert_eq!(totals.total, Money::from_cents(5495));
        assert_eq!(totals.subtotal + totals.shipping + totals.gift_wrapping, totals.total);
    }

    #[test]
    fn an_empty_cart_costs_only_shipping() {
        let totals = cart_totals(&Catalog::embedded(), &[], ShippingMethod::NextDay, false);
        assert_eq!((totals.subtotal, totals.total), (Money::ZERO, Money::from_cents(1999)));
    }
}

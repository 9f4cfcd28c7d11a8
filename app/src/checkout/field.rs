//! One form field: its label, input, hint and inline error, tied together for
//! assistive technology (`for`, `aria-describedby`, `aria-invalid`).
//!
//! Ids and names derive from the field's path in the checkout request
//! (`creditCard.number`), the same path a server refusal names, so a refusal finds
//! its input and a browser test finds it too. Names are what serde_qs reads on the
//! server: `request[creditCard][number]`.

use domain::field::path;
use leptos::html::{Input, Textarea};
use leptos::prelude::*;

use super::state::FieldState;

/// The gift-wrapping checkbox's path (the domain names no rule for it).
pub(crate) const GIFT_WRAPPING_PATH: &str = "giftWrapping";

/// `items[3].name`: the hidden input carrying a line's title.
pub(crate) fn item_name_path(index: usize) -> String {
    format!("items[{index}].name")
}

/// The `id` of the input for a field path: `creditCard.number` →
/// `field-creditCard-number`, `items[0].quantity` → `field-items-0-quantity`.
/// Its inline error is `{id}-error`.
pub fn field_input_id(path: &str) -> String {
    path.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .fold(String::from("field"), |id, part| format!("{id}-{part}"))
}

/// The `name` under which an input posts, as the server function's argument
/// `request`: `creditCard.number` → `request[creditCard][number]`,
/// `items[0].quantity` → `request[items][0][quantity]`.
pub(crate) fn field_input_name(path: &str) -> String {
    path.split(['.', '[', ']'])
        .filter(|part| !part.is_empty())
        .fold(String::from("request"), |name, part| format!("{name}[{part}]"))
}

/// The id of a field's inline error element.
pub(crate) fn error_id(input_id: &str) -> String {
    format!("{input_id}-error")
}

/// What the shopper calls a field, for labels and for naming it in a refusal.
pub(crate) fn field_label(field: &str) -> &str {
    match field {
        path::NAME => "Full name",
        path::CONTACT => "Email",
        path::STREET => "Street and house number",
        path::CITY => "City",
        path::STATE => "State or region",
        path::ZIP => "Postal code",
        path::COUNTRY => "Country",
        path::SHIPPING_METHOD => "Shipping method",
        path::CLIENT_CARD => "Client card",
        path::CARD_NUMBER => "Card number",
        path::CARD_EXPIRY => "Expiry date",
        path::CARD_CVV => "Security code (CVV)",
        path::COMMENT => "Comment for the shop",
        path::GIFT_MESSAGE => "Gift message",
        path::TERMS => "Terms and conditions",
        other if other == path::ITEMS || other.starts_with("items[") => "Books in your order",
        other => other,
    }
}

/// The inline error under a field; empty (and hidden by the stylesheet) while the
/// field is fine.
#[component]
pub(crate) fn InlineError(id: String, state: FieldState) -> impl IntoView {
    view! { <p class="field-error" id=error_id(&id)>{move || state.error()}</p> }
}

/// A labelled single-line input checked with the domain's rule for its field.
#[component]
pub(crate) fn TextField(
    /// The field's path in the checkout request (`creditCard.number`).
    path: &'static str,
    state: FieldState,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
    #[prop(optional)] placeholder: Option<&'static str>,
    #[prop(optional)] maxlength: Option<&'static str>,
    /// A line under the label saying what to enter.
    #[prop(optional)]
    hint: Option<&'static str>,
    /// Blank is fine: no `required`, and the label says so.
    #[prop(optional)]
    optional: bool,
    /// True when what is typed so far is already certainly wrong (or complete), so
    /// the error may show before the shopper leaves the field.
    #[prop(optional)]
    settled: Option<fn(&str) -> bool>,
    /// Shown beside the input (the card network).
    #[prop(optional)]
    children: Option<Children>,
) -> impl IntoView {
    let id = field_input_id(path);
    let (hint_id, described_by) = descriptions(&id, hint.is_some());
    let input = NodeRef::<Input>::new();
    // Values typed or restored by the browser before the page came alive.
    Effect::new(move |_| {
        if let Some(input) = input.get() {
            state.adopt(input.value());
        }
    });
    view! {
        <div class="field" class:has-error=move || state.error().is_some()>
            <label for=id.clone()>
                {field_label(path)}
                {optional.then(|| view! { <span class="optional">" (optional)"</span> })}
            </label>
            {hint.map(|hint| view! { <p class="field-hint" id=hint_id.clone()>{hint}</p> })}
            <div class="input-row">
                <input
                    node_ref=input
                    id=id.clone()
                    name=field_input_name(path)
                    type=kind
                    value=state.value.get_untracked()
                    autocomplete=autocomplete
                    inputmode=inputmode
                    placeholder=placeholder
                    maxlength=maxlength
                    required=!optional
                    aria-describedby=described_by
                    aria-invalid=move || state.error().map(|_| "true")
                    on:input=move |ev| {
                        let value = event_target_value(&ev);
                        if settled.is_some_and(|settled| settled(&value)) {
                            state.touched.set(true);
                        }
                        state.input(value);
                    }
                    on:blur=move |_| state.leave()
                />
                {children.map(|children| children())}
            </div>
            <InlineError id=id state />
        </div>
    }
    .into_any()
}

/// The id of a field's hint, and what its input's `aria-describedby` lists: the
/// hint, if there is one, and the inline error.
fn descriptions(id: &str, has_hint: bool) -> (String, String) {
    let hint_id = format!("{id}-hint");
    let described_by = if has_hint { format!("{hint_id} {}", error_id(id)) } else { error_id(id) };
    (hint_id, described_by)
}

/// A labelled, optional multi-line input.
#[component]
pub(crate) fn TextArea(
    path: &'static str,
    state: FieldState,
    #[prop(optional)] hint: Option<&'static str>,
) -> impl IntoView {
    let id = field_input_id(path);
    let (hint_id, described_by) = descriptions(&id, hint.is_some());
    let area = NodeRef::<Textarea>::new();
    Effect::new(move |_| {
        if let Some(area) = area.get() {
            state.adopt(area.value());
        }
    });
    view! {
        <div class="field" class:has-error=move || state.error().is_some()>
            <label for=id.clone()>
                {field_label(path)} <span class="optional">" (optional)"</span>
            </label>
            {hint.map(|hint| view! { <p class="field-hint" id=hint_id.clone()>{hint}</p> })}
            <textarea
                node_ref=area
                id=id.clone()
                name=field_input_name(path)
                rows="3"
                maxlength=domain::field::MAX_NOTE_CHARS.to_string()
                aria-describedby=described_by
                aria-invalid=move || state.error().map(|_| "true")
                on:input=move |ev| state.input(event_target_value(&ev))
                on:blur=move |_| state.leave()
            ></textarea>
            <InlineError id=id state />
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_ids_follow_the_field_path() {
        assert_eq!(field_input_id(path::CARD_NUMBER), "field-creditCard-number");
        assert_eq!(field_input_id(path::NAME), "field-user-name");
        assert_eq!(field_input_id(path::TERMS), "field-termsAccepted");
        assert_eq!(field_input_id(&path::item_quantity(1)), "field-items-1-quantity");
        assert_eq!(error_id(&field_input_id(path::ZIP)), "field-billingAddress-zip-error");
    }

    #[test]
    fn input_names_are_the_server_function_argument() {
        assert_eq!(field_input_name(path::CARD_NUMBER), "request[creditCard][number]");
        assert_eq!(field_input_name(path::CARD_EXPIRY), "request[creditCard][expirationDate]");
        assert_eq!(field_input_name(&path::item_quantity(0)), "request[items][0][quantity]");
        assert_eq!(field_input_name(&item_name_path(2)), "request[items][2][name]");
        assert_eq!(field_input_name(path::SHIPPING_METHOD), "request[shippingMethod]");
    }

    #[test]
    fn refusals_name_fields_in_the_shoppers_words() {
        assert_eq!(field_label(path::CARD_CVV), "Security code (CVV)");
        assert_eq!(field_label(&path::item_id(3)), "Books in your order");
        assert_eq!(field_label("somethingNew"), "somethingNew");
    }
}

//! The checkout form's sections: contact, billing address, shipping, client card,
//! payment and extras, then the terms.
//!
//! Radio groups and checkboxes are plain inputs that post their values; the page
//! only follows the ones that change the price (shipping, gift wrapping).

use domain::field::path;
use domain::order::GIFT_WRAPPING;
use domain::{ClientCard, ShippingMethod};
use leptos::html::Input;
use leptos::prelude::*;

use super::field::{
    error_id, field_input_id, field_input_name, field_label, InlineError, TextArea, TextField, GIFT_WRAPPING_PATH,
};
use super::state::{card_number_settled, typed_network, CheckoutState};

/// Every section left of the order summary.
#[component]
pub(crate) fn CheckoutFields(state: CheckoutState) -> impl IntoView {
    view! {
        <fieldset class="section">
            <legend>"Contact"</legend>
            <TextField path=path::NAME state=state.name autocomplete="name" maxlength="100" />
            <TextField
                path=path::CONTACT
                state=state.email
                kind="email"
                autocomplete="email"
                inputmode="email"
                hint="We send the order confirmation here."
            />
        </fieldset>

        <fieldset class="section">
            <legend>"Billing address"</legend>
            <TextField path=path::STREET state=state.street autocomplete="street-address" />
            <div class="field-row">
                <TextField path=path::CITY state=state.city autocomplete="address-level2" />
                <TextField path=path::STATE state=state.region autocomplete="address-level1" optional=true />
            </div>
            <div class="field-row">
                <TextField path=path::ZIP state=state.zip autocomplete="postal-code" maxlength="12" />
                <TextField path=path::COUNTRY state=state.country autocomplete="country-name" />
            </div>
        </fieldset>

        <ShippingChoice state />
        <ClientCardChoice />

        <fieldset class="section">
            <legend>"Payment"</legend>
            <p class="section-hint">"Visa, Mastercard, American Express or Discover."</p>
            <TextField
                path=path::CARD_NUMBER
                state=state.card_number
                autocomplete="cc-number"
                inputmode="numeric"
                placeholder="1234 5678 9012 3456"
                maxlength="23"
                settled=card_number_settled
            >
                <span class="card-network" id="card-network" aria-live="polite">
                    {move || state.card_number.value.with(|number| typed_network(number).map(|network| network.name()))}
                </span>
            </TextField>
            <div class="field-row">
                <TextField
                    path=path::CARD_EXPIRY
                    state=state.expiry
                    autocomplete="cc-exp"
                    inputmode="numeric"
                    placeholder="MM/YY"
                    maxlength="7"
                    hint="As printed on the card."
                />
                <TextField
                    path=path::CARD_CVV
                    state=state.cvv
                    autocomplete="cc-csc"
                    inputmode="numeric"
                    maxlength="4"
                    hint="3 digits on the back; 4 on the front for American Express."
                />
            </div>
        </fieldset>

        <fieldset class="section">
            <legend>"Notes and gifts"</legend>
            <TextArea path=path::COMMENT state=state.comment hint="Anything we should know about the delivery." />
            <GiftWrapping state />
            // Shown only while gift wrapping is ticked (by the stylesheet, so it works
            // without JavaScript too).
            <div class="gift-message">
                <TextArea path=path::GIFT_MESSAGE state=state.gift_message hint="We print it on a card in the parcel." />
            </div>
        </fieldset>
    }
    .into_any()
}

/// Standard, Express or Next-Day, with price and delivery time.
#[component]
fn ShippingChoice(state: CheckoutState) -> impl IntoView {
    let choices = ShippingMethod::ALL
        .into_iter()
        .map(|method| {
            let id = format!("{}-{}", field_input_id(path::SHIPPING_METHOD), method.as_str());
            let radio = NodeRef::<Input>::new();
            // The browser may restore another choice than the default.
            Effect::new(move |_| {
                if radio.get().is_some_and(|radio| radio.checked()) {
                    state.shipping.set(method);
                }
            });
            view! {
                <label class="choice" for=id.clone()>
                    <input
                        node_ref=radio
                        type="radio"
                        id=id.clone()
                        name=field_input_name(path::SHIPPING_METHOD)
                        value=method.as_str()
                        checked=method == ShippingMethod::Standard
                        on:change=move |_| state.shipping.set(method)
                    />
                    <span class="choice-text">
                        <span class="choice-title">{method.as_str()}</span>
                        <span class="choice-detail">{method.delivery()}</span>
                    </span>
                    <span class="choice-price">{method.cost().to_string()}</span>
                </label>
            }
        })
        .collect_view();
    view! {
        <fieldset class="section choices" id=field_input_id(path::SHIPPING_METHOD)>
            <legend>{field_label(path::SHIPPING_METHOD)}</legend>
            {choices}
        </fieldset>
    }
    .into_any()
}

/// The shopper's client card, which sets the order's place in the packing queue.
#[component]
fn ClientCardChoice() -> impl IntoView {
    let hint_id = format!("{}-hint", field_input_id(path::CLIENT_CARD));
    let choices = ClientCard::ALL
        .into_iter()
        .map(|card| {
            let id = format!("{}-{}", field_input_id(path::CLIENT_CARD), card.as_str());
            let (title, detail) = match card {
                ClientCard::None => ("No client card", "Packed in turn."),
                ClientCard::Basic => ("Basic", "Packed before orders without a card."),
                ClientCard::Premium => ("Premium", "Packed first."),
            };
            view! {
                <label class="choice" for=id.clone()>
                    <input
                        type="radio"
                        id=id.clone()
                        name=field_input_name(path::CLIENT_CARD)
                        value=card.as_str()
                        checked=card == ClientCard::None
                    />
                    <span class="choice-text">
                        <span class="choice-title">{title}</span>
                        <span class="choice-detail">{detail}</span>
                    </span>
                </label>
            }
        })
        .collect_view();
    view! {
        <fieldset class="section choices" id=field_input_id(path::CLIENT_CARD) aria-describedby=hint_id.clone()>
            <legend>{field_label(path::CLIENT_CARD)}</legend>
            <p class="section-hint" id=hint_id.clone()>
                "Your client card sets your order's priority: we pack Premium orders first, then Basic, then the rest."
            </p>
            {choices}
        </fieldset>
    }
    .into_any()
}

/// The gift-wrapping checkbox, which adds to the price.
#[component]
fn GiftWrapping(state: CheckoutState) -> impl IntoView {
    let id = field_input_id(GIFT_WRAPPING_PATH);
    let checkbox = NodeRef::<Input>::new();
    Effect::new(move |_| {
        if let Some(checkbox) = checkbox.get() {
            state.gift_wrapping.set(checkbox.checked());
        }
    });
    view! {
        <div class="field field-check">
            <input
                node_ref=checkbox
                type="checkbox"
                id=id.clone()
                name=field_input_name(GIFT_WRAPPING_PATH)
                value="true"
                on:change=move |ev| state.gift_wrapping.set(event_target_checked(&ev))
            />
            <label for=id>{format!("Gift-wrap the books (+{GIFT_WRAPPING})")}</label>
        </div>
    }
}

/// The terms checkbox: required; the server refuses an order without it.
#[component]
pub(crate) fn TermsField(state: CheckoutState) -> impl IntoView {
    let field = state.terms;
    let id = field_input_id(path::TERMS);
    let checkbox = NodeRef::<Input>::new();
    Effect::new(move |_| {
        if let Some(checkbox) = checkbox.get() {
            field.adopt(if checkbox.checked() { "true" } else { "" }.to_owned());
        }
    });
    view! {
        <div class="field field-check terms" class:has-error=move || field.error().is_some()>
            <input
                node_ref=checkbox
                type="checkbox"
                id=id.clone()
                name=field_input_name(path::TERMS)
                value="true"
                required=true
                aria-describedby=error_id(&id)
                aria-invalid=move || field.error().map(|_| "true")
                on:change=move |ev| {
                    field.touched.set(true);
                    field.input(if event_target_checked(&ev) { "true" } else { "" }.to_owned());
                }
            />
            <label for=id.clone()>"I accept the terms and conditions of sale."</label>
            <InlineError id state=field />
        </div>
    }
    .into_any()
}

//! Which refusal a shopper is given when more than one step refuses, so that the
//! same request with the same history gets the same answer whatever the timing of
//! the two concurrent chains (a→c and b→d):
//! 1. the shopper's own input (a, then b, then c): the one thing they can fix;
//! 2. stock (a);
//! 3. fraud (d, then e);
//! 4. a service that could not answer.
//!
//! Fail fast still holds for what has not started: a step starts only while it
//! could still give a refusal that wins over the best one seen so far. So a fraud
//! refusal at d lets c run (c may find the card's format wrong, which wins), while
//! an input refusal at b keeps c and d from starting (nothing they could say wins).
//! Steps a and b always run to the end (both start at once), and c only ever
//! starts after a, so the answer depends on the request alone.

use domain::{Refusal, RefusalClass, Step};

/// Lower wins: (class, step).
type Rank = (u8, u8);

fn class_rank(class: RefusalClass) -> u8 {
    match class {
        RefusalClass::Invalid => 0,
        RefusalClass::OutOfStock => 1,
        RefusalClass::Fraud => 2,
        RefusalClass::Unavailable => 3,
    }
}

fn step_rank(step: Step) -> u8 {
    match step {
        Step::Input => 0,
        Step::InitOrder => 1,
        Step::VerifyItems => 2,
        Step::VerifyUserData => 3,
        Step::VerifyCardFormat => 4,
        Step::CheckUser => 5,
        Step::CheckCard => 6,
        Step::SuggestBooks => 7,
        Step::Enqueue => 8,
    }
}

fn rank(refusal: &Refusal) -> Rank {
    (class_rank(refusal.class), step_rank(refusal.step))
}

/// The best refusal `step` could give. The fraud steps re-read input the
/// verification steps before them have already passed, so they can only refuse
/// for fraud (or be unavailable).
fn best_possible(step: Step) -> Rank {
    let class = match step {
        Step::Input | Step::InitOrder | Step::VerifyItems | Step::VerifyUserData | Step::VerifyCardFormat => {
            RefusalClass::Invalid
        }
        Step::CheckUser | Step::CheckCard => RefusalClass::Fraud,
        Step::SuggestBooks | Step::Enqueue => RefusalClass::Unavailable,
    };
    (class_rank(class), step_rank(step))
}

/// The refusal that wins between `held` and `new`.
pub fn winner(held: Option<Refusal>, new: Refusal) -> Refusal {
    match held {
        Some(held) if rank(&held) <= rank(&new) => held,
        _ => new,
    }
}

/// Whether `step` may still start while `held` is the best refusal so far.
pub fn may_start(step: Step, held: Option<&Refusal>) -> bool {
    held.is_none_or(|held| best_possible(step) < rank(held))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(step: Step, class: RefusalClass) -> Refusal {
        Refusal {
            step,
            service: "test".to_owned(),
            class,
            code: format!("{step}"),
            message: String::new(),
            field: None,
        }
    }

    #[test]
    fn input_errors_win_over_stock_and_fraud_in_step_order() {
        let card = refusal(Step::VerifyCardFormat, RefusalClass::Invalid);
        let user = refusal(Step::VerifyUserData, RefusalClass::Invalid);
        let stock = refusal(Step::VerifyItems, RefusalClass::OutOfStock);
        let fraud = refusal(Step::CheckUser, RefusalClass::Fraud);
        assert_eq!(winner(Some(fraud.clone()), card.clone()), card);
        assert_eq!(winner(Some(card.clone()), fraud.clone()), card);
        assert_eq!(winner(Some(card.clone()), user.clone()), user, "b before c");
        assert_eq!(winner(Some(stock.clone()), card.clone()), card);
        assert_eq!(winner(Some(fraud), stock.clone()), stock);
    }

    #[test]
    fn a_fraud_refusal_lets_the_card_format_check_start_but_not_the_card_fraud_check() {
        let fraud = refusal(Step::CheckUser, RefusalClass::Fraud);
        assert!(may_start(Step::VerifyCardFormat, Some(&fraud)));
        assert!(!may_start(Step::CheckCard, Some(&fraud)));
        assert!(!may_start(Step::SuggestBooks, Some(&fraud)));
    }

    #[test]
    fn an_input_refusal_keeps_later_checks_from_starting() {
        let user = refusal(Step::VerifyUserData, RefusalClass::Invalid);
        assert!(!may_start(Step::VerifyCardFormat, Some(&user)));
        assert!(!may_start(Step::CheckUser, Some(&user)));
        let stock = refusal(Step::VerifyItems, RefusalClass::OutOfStock);
        assert!(!may_start(Step::CheckUser, Some(&stock)), "fraud could not win over stock");
        assert!(may_start(Step::CheckUser, None));
    }
}

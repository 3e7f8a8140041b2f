//! WeChat's 5 seconds: the conversation's answer is awaited for a bounded budget; past it the
//! webhook answers `success` and the answer, when it comes, goes out as a customer-service
//! message (客服消息).
//!
//! The work runs in its own task from the start, so missing the deadline does not cancel it
//! (cancelling would lose a binding or a report half made); only the wait is bounded.

use std::{future::Future, time::Duration};

use tracing::Instrument as _;

/// The conversation's answer, or that it missed the budget and continues in the background.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer<T> {
    InTime(T),
    Late,
    /// The work panicked; nothing will come.
    Failed,
}

/// Runs `work`; waits `budget` for it; if it is late, hands its result to `late` when done.
pub async fn within<T, W, L, LF>(budget: Duration, work: W, late: L) -> Answer<T>
where
    T: Send + 'static,
    W: Future<Output = T> + Send + 'static,
    L: FnOnce(T) -> LF + Send + 'static,
    LF: Future<Output = ()> + Send + 'static,
{
    // The work and its late delivery stay in the request's span, so the gRPC calls they make
    // continue the request's trace.
    let mut handle = tokio::spawn(work.in_current_span());
    // No time left (the budget is 0, or the steps before used it up): late for certain,
    // without racing the work for a poll it might just win.
    let outcome = if budget.is_zero() {
        Err(())
    } else {
        tokio::time::timeout(budget, &mut handle)
            .await
            .map_err(|_| ())
    };
    match outcome {
        Ok(Ok(answer)) => Answer::InTime(answer),
        Ok(Err(_)) => Answer::Failed,
        Err(()) => {
            // Bounded by the work's own peer deadlines, then one API call.
            tokio::spawn(
                async move {
                    if let Ok(answer) = handle.await {
                        late(answer).await;
                    }
                }
                .in_current_span(),
            );
            Answer::Late
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_fast_answer_is_returned_in_time() {
        let got = within(Duration::from_millis(500), async { 7 }, |_| async {}).await;
        assert_eq!(got, Answer::InTime(7));
    }

    #[tokio::test]
    async fn no_budget_left_is_late_even_for_an_instant_answer() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let got = within(Duration::ZERO, async { 1 }, move |answer| async move {
            let _ = tx.send(answer);
        })
        .await;
        assert_eq!(got, Answer::Late);
        assert_eq!(rx.await.expect("delivered afterwards"), 1);
    }

    #[tokio::test]
    async fn a_slow_answer_is_late_and_delivered_afterwards() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = Instant::now();
        let got = within(
            Duration::from_millis(50),
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "答复"
            },
            move |answer| async move {
                let _ = tx.send(answer);
            },
        )
        .await;
        assert_eq!(got, Answer::Late);
        assert!(started.elapsed() < Duration::from_millis(250));
        assert_eq!(rx.await.expect("late answer delivered"), "答复");
    }
}

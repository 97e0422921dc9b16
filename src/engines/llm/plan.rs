//! The batched LLM's decisions, as pure functions: which cached sequence a new reply takes
//! and whose cache it copies ([`choose_sequence`]), and which replies advance in the next
//! batch ([`plan`]), by deadline and just in time.

use std::time::{Duration, Instant};

use crate::engines::schedule::Deadline;

/// How far ahead of its deadline a reply is written: enough to write a sentence and voice
/// it before the audio already queued runs out, under load too. A reply due later than
/// this waits, and the batch belongs to the replies callers are waiting for.
pub(super) const LEAD: Duration = Duration::from_millis(3000);

/// A sequence being written, as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Active {
    pub due: Deadline,
    /// Prompt tokens still to evaluate (0: it is generating).
    pub prompt_left: usize,
}

/// What the next decoding step holds.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Step {
    /// Sequences that advance by one generated token.
    pub generate: Vec<usize>,
    /// Sequences that evaluate this many prompt tokens, earliest deadline first.
    pub prompt: Vec<(usize, usize)>,
}

impl Step {
    pub fn is_empty(&self) -> bool {
        self.generate.is_empty() && self.prompt.is_empty()
    }
}

/// The next step for `sequences` (None: idle): every reply due within `lead` of `now`
/// generates a token, and prompts due within it share `prompt_budget` tokens, earliest
/// deadline first (a long prompt is evaluated over several steps, so it neither stalls
/// the replies already speaking nor outlives a cancellation by more than one step). While
/// a speech job due at `speech` holds or waits for the cores, replies due later wait.
pub(super) fn plan(
    sequences: &[Option<Active>],
    now: Instant,
    lead: Duration,
    speech: Option<Deadline>,
    prompt_budget: usize,
) -> Step {
    let mut step = Step::default();
    let mut prompts = Vec::new();
    let runs = |a: &Active| a.due.within(now, lead) && speech.is_none_or(|s| a.due <= s);
    for (i, a) in sequences.iter().enumerate() {
        let Some(a) = a.filter(runs) else {
            continue;
        };
        if a.prompt_left == 0 {
            step.generate.push(i);
        } else {
            prompts.push((a.due, i, a.prompt_left));
        }
    }
    prompts.sort();
    let mut budget = prompt_budget;
    for (_, i, left) in prompts {
        if budget == 0 {
            break;
        }
        let n = left.min(budget);
        step.prompt.push((i, n));
        budget -= n;
    }
    step
}

/// The longest the generation thread sleeps when no step is planned: deadlines move as
/// replies play, and a reply may be dropped meanwhile (a new reply wakes it at once).
const IDLE_MOST: Duration = Duration::from_millis(50);

/// How often replies that step aside for a speech job look again whether it is done.
const ASIDE_POLL: Duration = Duration::from_millis(4);

/// How long to sleep when the next step is empty: until the earliest waiting reply falls
/// due (within `lead`), at most [`IDLE_MOST`]; while a reply is due but steps aside for
/// speech, [`ASIDE_POLL`], never zero: the thread must not spin on the cores the speech
/// job is using.
pub(super) fn idle_wait(sequences: &[Option<Active>], now: Instant, lead: Duration) -> Duration {
    let wake = sequences
        .iter()
        .flatten()
        .filter_map(|a| a.due.instant())
        .min()
        .map(|t| t.checked_sub(lead).unwrap_or(t));
    match wake {
        None => IDLE_MOST,
        Some(at) if at > now => (at - now).min(IDLE_MOST),
        Some(_) => ASIDE_POLL,
    }
}

/// A sequence, as the chooser sees it: the tokens in its cache, when it was last used (a
/// counter: larger is more recent), and whether a reply is being written on it (then it can
/// lend its cache, not take the reply).
pub(super) struct Cached<'a, T> {
    pub index: usize,
    pub cached: &'a [T],
    pub used: u64,
    pub busy: bool,
}

/// Where a reply goes: its sequence, the cached tokens it keeps, and the sequence whose
/// cache is copied there first, when that one shares a longer start with the prompt.
#[derive(Debug, PartialEq)]
pub(super) struct Seat {
    pub index: usize,
    pub kept: usize,
    pub copy_from: Option<usize>,
}

/// A cached token of another conversation thrown away counts this many times a token
/// evaluated now: that call will likely come back for it, and if it then takes yet another
/// call's sequence, the calls keep evicting each other.
const WASTE_WEIGHT: usize = 4;

/// The fewest prompt tokens worth copying another sequence's cache for instead of
/// evaluating them (llama.cpp copies a sequence's whole KV buffer).
pub(super) const MIN_COPY: usize = 16;

/// Where a reply to `prompt` should go, among the idle `sequences`, and how many cached
/// tokens it keeps. A longer start of the prompt cached on any other sequence (the prompt
/// head every call shares, at least) is copied instead of evaluated again, so a new call
/// neither pays for the head nor takes another call's conversation for it. The cost of a
/// choice is the tokens evaluated now plus the cached tokens thrown away
/// ([`WASTE_WEIGHT`]): a call comes back to its own sequence, a new call takes an empty or
/// a long-unused one. Ties go to a choice without a copy, then to the least recently used.
pub(super) fn choose_sequence<'a, T: PartialEq + 'a>(
    sequences: impl IntoIterator<Item = Cached<'a, T>>,
    prompt: &[T],
) -> Option<Seat> {
    // How much of the prompt each sequence holds; at least one token is evaluated: its
    // logits start the reply.
    let held: Vec<_> = sequences
        .into_iter()
        .map(|s| {
            let common = s
                .cached
                .iter()
                .zip(prompt)
                .take_while(|(a, b)| a == b)
                .count();
            (common.min(prompt.len().saturating_sub(1)), s)
        })
        .collect();
    let lender = held
        .iter()
        .map(|(n, s)| (*n, s.index))
        .max_by_key(|&(n, index)| (n, std::cmp::Reverse(index)));
    held.iter()
        .filter(|(_, s)| !s.busy)
        .map(|(own, s)| {
            let own = *own;
            let (kept, copy_from, thrown) = match lender {
                Some((n, from)) if from != s.index && n >= own + MIN_COPY => {
                    (n, Some(from), s.cached.len())
                }
                _ => (own, None, s.cached.len() - own),
            };
            let cost = (prompt.len() - kept) + WASTE_WEIGHT * thrown;
            (
                cost,
                s.used,
                Seat {
                    index: s.index,
                    kept,
                    copy_from,
                },
            )
        })
        .min_by_key(|(cost, used, seat)| (*cost, seat.copy_from.is_some(), *used))
        .map(|(_, _, seat)| seat)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lead these tests plan with.
    const LEAD: Duration = Duration::from_millis(2000);

    fn active(now: Instant, due_ms: Option<u64>, prompt_left: usize) -> Option<Active> {
        let due = due_ms.map_or(Deadline::NONE, |ms| {
            Deadline::at(now + Duration::from_millis(ms))
        });
        Some(Active { due, prompt_left })
    }

    #[test]
    fn due_replies_generate_and_prompts_share_the_budget_by_deadline() {
        let now = Instant::now();
        let seqs = [
            active(now, Some(0), 0),    // speaking its first sentence
            None,                       // idle
            active(now, Some(8000), 0), // next sentence needed in 8 s
            active(now, Some(50), 300), // a new turn, due a bit later
            active(now, Some(10), 100), // a new turn, due first
            active(now, None, 40),      // background work
            active(now, Some(1500), 0), // next sentence needed soon
        ];
        let step = plan(&seqs, now, LEAD, None, 128);
        assert_eq!(step.generate, [0, 6]);
        assert_eq!(step.prompt, [(4, 100), (3, 28)]);
    }

    #[test]
    fn replies_due_after_a_waiting_speech_job_step_aside_for_it() {
        let now = Instant::now();
        let seqs = [
            active(now, Some(0), 0),    // its caller waits since before the speech job
            active(now, Some(300), 0),  // due after it
            active(now, Some(400), 50), // a new turn, due after it
        ];
        let speech = Some(Deadline::at(now + Duration::from_millis(100)));
        let step = plan(&seqs, now, LEAD, speech, 128);
        assert_eq!((step.generate, step.prompt), (vec![0], vec![]));
        let step = plan(&seqs, now, LEAD, None, 128);
        assert_eq!((step.generate, step.prompt), (vec![0, 1], vec![(2, 50)]));
    }

    #[test]
    fn nothing_runs_until_a_reply_falls_due() {
        let now = Instant::now();
        let seqs = [active(now, Some(5000), 0), None, active(now, None, 10)];
        assert!(plan(&seqs, now, LEAD, None, 128).is_empty());
        // Due in 5 s, written from LEAD (here 2 s) before: the thread sleeps its longest,
        // and wakes when the reply falls due.
        assert_eq!(idle_wait(&seqs, now, LEAD), IDLE_MOST);
        let wake = now + Duration::from_millis(2990);
        let left = idle_wait(&seqs, wake, LEAD);
        // Deadlines keep microseconds.
        assert!(left <= Duration::from_millis(10) && left > Duration::from_millis(9));
        let due = now + Duration::from_millis(3000);
        assert_eq!(plan(&seqs, due, LEAD, None, 128).generate, [0]);
        assert_eq!(
            idle_wait(&[None, active(now, None, 3)], now, LEAD),
            IDLE_MOST
        );
    }

    #[test]
    fn replies_stepping_aside_for_speech_sleep_instead_of_spinning() {
        let now = Instant::now();
        let seqs = [active(now, Some(300), 0)];
        let speech = Some(Deadline::at(now));
        assert!(plan(&seqs, now, LEAD, speech, 128).is_empty());
        // Due already (within the lead), yet waiting: a short sleep, not zero.
        assert_eq!(idle_wait(&seqs, now, LEAD), ASIDE_POLL);
        assert!(!ASIDE_POLL.is_zero());
    }

    fn seat(index: usize, kept: usize, copy_from: Option<usize>) -> Option<Seat> {
        Some(Seat {
            index,
            kept,
            copy_from,
        })
    }

    fn idle(index: usize, cached: &[i32], used: u64) -> Cached<'_, i32> {
        Cached {
            index,
            cached,
            used,
            busy: false,
        }
    }

    #[test]
    fn a_call_returns_to_its_own_sequence_and_a_new_one_takes_an_empty_one() {
        let system = [1, 2, 3, 4];
        let call_a: Vec<i32> = [&system[..], &[10, 11, 12, 13, 14, 15]].concat();
        let views = || [idle(0, &[], 0), idle(1, &call_a, 1)];
        let next_turn_a: Vec<i32> = [&call_a[..], &[16, 17]].concat();
        assert_eq!(choose_sequence(views(), &next_turn_a), seat(1, 10, None));
        let new_call: Vec<i32> = [&system[..], &[20, 21]].concat();
        assert_eq!(choose_sequence(views(), &new_call), seat(0, 0, None));
        // The same prompt again keeps all but its last token (its logits start the reply).
        assert_eq!(choose_sequence(views(), &call_a), seat(1, 9, None));
        assert_eq!(choose_sequence(std::iter::empty(), &call_a), None);
    }

    #[test]
    fn a_new_call_copies_the_shared_head_from_another_sequence_busy_or_not() {
        let head: Vec<i32> = (0..40).collect();
        let call_a: Vec<i32> = [&head[..], &[100, 101, 102]].concat();
        let new_call: Vec<i32> = [&head[..], &[200, 201]].concat();
        // The empty sequence takes the new call with a copy of the head; call A keeps its own.
        let views = || [idle(0, &call_a, 5), idle(1, &[], 1)];
        assert_eq!(choose_sequence(views(), &new_call), seat(1, 40, Some(0)));
        // A sequence being written lends its cache too, and takes nothing.
        let busy = Cached {
            busy: true,
            ..idle(0, &call_a, 5)
        };
        assert_eq!(
            choose_sequence([busy, idle(1, &[], 1)], &new_call),
            seat(1, 40, Some(0))
        );
        // Too short a gain is evaluated, not copied: the copy moves a whole KV buffer.
        let short: Vec<i32> = [&head[..MIN_COPY - 1], &[300]].concat();
        assert_eq!(
            choose_sequence(views(), &short),
            seat(1, 0, None),
            "{MIN_COPY} tokens at least"
        );
        // A call back on its own sequence copies nothing.
        let next_turn_a: Vec<i32> = [&call_a[..], &[103]].concat();
        assert_eq!(choose_sequence(views(), &next_turn_a), seat(0, 43, None));
    }

    #[test]
    fn between_equal_choices_the_least_recently_used_goes() {
        let seqs = [idle(0, &[1, 2], 9), idle(1, &[1, 3], 4)];
        assert_eq!(choose_sequence(seqs, &[5, 6, 7]), seat(1, 0, None));
    }
}

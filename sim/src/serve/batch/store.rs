//! The batches and files `serve` holds, and where each request of a batch stands at a
//! given virtual time.
//!
//! A batch is processed when it is created ([`lane`]): every request's answer and the
//! virtual time it is ready are known from then on, and the clock reveals them. A request with an answer ready by `now` has its result; one without
//! is processing, then `canceled` if the batch was cancelled first, or `expired` once
//! the batch's expiry has passed. The batch has ended when every request has one of
//! those results. Memory is bounded: at most [`BatchSettings::max_batches`] batches
//! and as many uploaded files are held (the oldest ended batch, and the oldest file
//! a batch has used, make room), each of at most [`BatchSettings::max_items`] requests.

use std::collections::BTreeMap;
use std::time::Duration;

use breakwater_core::Time;
use breakwater_core::rng::seeded;

use super::lane::{self, LaneRequest};
use super::{BatchSettings, BatchStats};
use crate::engine::derive_seed;
use crate::provider::{AttemptSpec, Response, RowOp};
use crate::scenario::{Scenario, Tokens};
use crate::serve::catalog::{Catalog, Target};
use crate::serve::clock::VirtualClock;
use crate::serve::wire::{Ask, Problem, Wire};

/// What became of one request, once it has a result.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    /// An answer.
    Answered,
    /// An error answer.
    Refused(Problem),
}

/// One request of a batch.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Item {
    /// The caller's id for it.
    pub(crate) custom_id: String,
    /// The model it named.
    pub(crate) model: String,
    /// Its result and when it was ready; `None` if it never finished.
    pub(crate) result: Option<(Time, Outcome)>,
    /// Input tokens, as estimated.
    pub(crate) input_tokens: u32,
    /// Output tokens of its answer.
    pub(crate) output_tokens: u32,
    /// Whether `max_tokens` cut the answer.
    pub(crate) hit_limit: bool,
    /// Seeds the answer's words.
    pub(crate) text_seed: u64,
}

/// Where one request stands at some time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ItemState<'a> {
    /// Not done yet.
    Processing,
    /// Answered.
    Succeeded,
    /// An error answer.
    Errored(&'a Problem),
    /// The batch was cancelled before it ran.
    Canceled,
    /// The batch expired before it ran.
    Expired,
}

/// A request as a create call brought it: its id, the model it named, and where it
/// goes with what it asks, or why it is invalid (an `errored` result).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewItem {
    /// The caller's id for it.
    pub(crate) custom_id: String,
    /// The model named.
    pub(crate) model: String,
    /// Where it goes and what it asks; the problem for an invalid one.
    pub(crate) ask: Result<(Target, Ask), Problem>,
}

/// A create call, read: what `serve` makes a batch of.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Submission {
    /// The API it came through.
    pub(crate) wire: Wire,
    /// OpenAI: the input file's id.
    pub(crate) input_file: Option<String>,
    /// Its requests.
    pub(crate) items: Vec<NewItem>,
    /// OpenAI: why the input file does not validate (`code`, `message`, `line`); the
    /// batch then fails at once, without items.
    pub(crate) errors: Vec<LineError>,
}

/// A reason an input file does not validate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LineError {
    /// OpenAI's error code (`invalid_json_line`, …).
    pub(crate) code: &'static str,
    /// What is wrong.
    pub(crate) message: String,
    /// The line, from 1, if one is to blame.
    pub(crate) line: Option<usize>,
}

/// A whole batch refused at creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// More requests than [`BatchSettings::max_items`] (400).
    TooManyItems(usize),
    /// [`BatchSettings::max_batches`] batches are still processing (429).
    Full(usize),
}

/// A batch.
#[derive(Clone, Debug)]
pub(crate) struct Batch {
    /// The API it was created through.
    pub(crate) wire: Wire,
    /// When it was created.
    pub(crate) created: Time,
    /// When it expires.
    pub(crate) expires: Time,
    /// When a cancel was asked for.
    pub(crate) canceled: Option<Time>,
    /// OpenAI: the input file.
    pub(crate) input_file: Option<String>,
    /// OpenAI: why it failed validation (then it has no items and ended at once).
    pub(crate) errors: Vec<LineError>,
    /// Its requests, in the order sent.
    pub(crate) items: Vec<Item>,
    /// When every result is in, without a cancel.
    natural_end: Time,
}

impl Batch {
    /// When it ends (or ended).
    pub(crate) fn end(&self) -> Time {
        self.canceled
            .map_or(self.natural_end, |c| c.min(self.natural_end))
    }

    /// Whether it has ended by `now`.
    pub(crate) fn ended(&self, now: Time) -> bool {
        now >= self.end()
    }

    /// Where `item` stands at `now`.
    pub(crate) fn state<'a>(&self, item: &'a Item, now: Time) -> ItemState<'a> {
        let cutoff = self.canceled.map_or(now, |c| c.min(now));
        match &item.result {
            Some((at, Outcome::Answered)) if *at <= cutoff => ItemState::Succeeded,
            Some((at, Outcome::Refused(problem))) if *at <= cutoff => ItemState::Errored(problem),
            _ if self.canceled.is_some_and(|c| c <= now) => ItemState::Canceled,
            _ if now >= self.expires => ItemState::Expired,
            _ => ItemState::Processing,
        }
    }

    /// How many requests stand where, at `now`.
    pub(crate) fn counts(&self, now: Time) -> BatchStats {
        let mut s = BatchStats::default();
        for item in &self.items {
            match self.state(item, now) {
                ItemState::Processing => s.processing += 1,
                ItemState::Succeeded => s.succeeded += 1,
                ItemState::Errored(_) => s.errored += 1,
                ItemState::Canceled => s.canceled += 1,
                ItemState::Expired => s.expired += 1,
            }
        }
        s
    }
}

/// An uploaded file.
#[derive(Clone, Debug)]
pub(crate) struct File {
    /// Its content.
    pub(crate) bytes: Vec<u8>,
    /// Whether a batch was created from it (it may then make room for newer files).
    pub(crate) used: bool,
}

/// The batches and files, and what processing a batch needs.
#[derive(Debug)]
pub(crate) struct Store {
    settings: BatchSettings,
    scenario: Scenario,
    seed: u64,
    output: Tokens,
    batches: BTreeMap<u64, Batch>,
    files: BTreeMap<u64, File>,
    serial: u64,
    /// Counts of batches no longer held.
    evicted: BatchStats,
}

impl Store {
    /// An empty store processing with `scenario`'s providers, seeded by `seed`.
    pub(crate) fn new(
        settings: BatchSettings,
        scenario: Scenario,
        seed: u64,
        output: Tokens,
    ) -> Store {
        Store {
            settings,
            scenario,
            seed,
            output,
            batches: BTreeMap::new(),
            files: BTreeMap::new(),
            serial: 0,
            evicted: BatchStats::default(),
        }
    }

    /// Creates and processes the batch `submission` asks for at `now`; its serial.
    pub(crate) fn create(
        &mut self,
        submission: Submission,
        catalog: &Catalog,
        clock: &VirtualClock,
        now: Time,
    ) -> Result<u64, Refusal> {
        if submission.items.len() > self.settings.max_items {
            return Err(Refusal::TooManyItems(self.settings.max_items));
        }
        if self.batches.len() >= self.settings.max_batches {
            let Some(oldest) = self
                .batches
                .iter()
                .find(|(_, b)| b.ended(now))
                .map(|(&serial, _)| serial)
            else {
                return Err(Refusal::Full(self.settings.max_batches));
            };
            if let Some(gone) = self.batches.remove(&oldest) {
                self.evicted += gone.counts(now);
                self.evicted.batches += 1;
            }
        }
        self.serial += 1;
        let serial = self.serial;
        let expires = now + self.settings.expiry;
        let batch = self.process(submission, catalog, clock, now, expires);
        self.batches.insert(serial, batch);
        Ok(serial)
    }

    /// Runs the submission's requests through a lane of their own.
    fn process(
        &self,
        submission: Submission,
        catalog: &Catalog,
        clock: &VirtualClock,
        now: Time,
        expires: Time,
    ) -> Batch {
        let new = submission.items;
        let mut rng = seeded(derive_seed(self.seed, "serve-batch", self.serial));
        let n = new.len().max(1) as u128;
        let turnaround = self.settings.turnaround.as_nanos();
        let arrival = |k: usize| {
            let offset = turnaround * (k as u128 + 1) / n;
            now + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
        };
        let mut items = Vec::with_capacity(new.len());
        let mut requests = Vec::new();
        let mut lane_of = Vec::new();
        let mut servers = BTreeMap::new();
        let indices: Vec<usize> = catalog.scenario_indices().collect();
        for (k, item) in new.into_iter().enumerate() {
            let mut kept = Item {
                custom_id: item.custom_id,
                model: item.model,
                result: None,
                input_tokens: 0,
                output_tokens: 0,
                hit_limit: false,
                text_seed: 0,
            };
            match item.ask {
                Err(problem) => kept.result = Some((arrival(k), Outcome::Refused(problem))),
                Ok((target, ask)) => {
                    let drawn = self.output.sample(&mut rng);
                    kept.text_seed = breakwater_core::Rng::next_u64(&mut rng);
                    kept.output_tokens = ask.max_tokens.map_or(drawn, |m| drawn.min(m));
                    kept.hit_limit = ask.max_tokens.is_some_and(|m| drawn >= m);
                    kept.input_tokens =
                        u32::try_from(ask.text_bytes / 4).unwrap_or(u32::MAX).max(1);
                    if let Some(&index) = indices.get(target.slot)
                        && !servers.contains_key(&target.slot)
                        && let Some(server) = lane::lane_server(&self.scenario, index)
                    {
                        servers.insert(target.slot, server);
                    }
                    requests.push(LaneRequest {
                        at: arrival(k),
                        slot: target.slot,
                        spec: AttemptSpec {
                            model: target.model,
                            input_tokens: kept.input_tokens,
                            output_tokens: kept.output_tokens,
                            row: RowOp::Read,
                            // The lane tags each request with its index.
                            tag: 0,
                        },
                    });
                    lane_of.push((k, target));
                }
            }
            items.push(kept);
        }
        let answers = lane::process(&mut servers, &requests, expires, &mut rng);
        for ((k, target), answer) in lane_of.into_iter().zip(answers) {
            if let (Some(item), Some((at, response))) = (items.get_mut(k), answer) {
                item.result = Some((at, outcome(response, target, catalog, clock)));
            }
        }
        let natural_end = items
            .iter()
            .map(|i| i.result.as_ref().map_or(expires, |(at, _)| *at))
            .max()
            .unwrap_or(now);
        Batch {
            wire: submission.wire,
            created: now,
            expires,
            canceled: None,
            input_file: submission.input_file,
            errors: submission.errors,
            items,
            natural_end,
        }
    }

    /// The batch `serial` of `wire`, if held.
    pub(crate) fn batch(&self, wire: Wire, serial: u64) -> Option<&Batch> {
        self.batches.get(&serial).filter(|b| b.wire == wire)
    }

    /// Cancels batch `serial` at `now`: `Ok(true)` if it was still processing (its
    /// unfinished requests become `canceled`), `Ok(false)` if it had ended; `Err` for
    /// an unknown batch.
    pub(crate) fn cancel(&mut self, wire: Wire, serial: u64, now: Time) -> Result<bool, ()> {
        let batch = self
            .batches
            .get_mut(&serial)
            .filter(|b| b.wire == wire)
            .ok_or(())?;
        if batch.ended(now) || batch.canceled.is_some() {
            return Ok(false);
        }
        batch.canceled = Some(now);
        Ok(true)
    }

    /// Stores an uploaded file; its number, or `None` when every held file is waiting
    /// for its batch.
    pub(crate) fn upload(&mut self, bytes: Vec<u8>) -> Option<u64> {
        if self.files.len() >= self.settings.max_batches {
            let oldest = self.files.iter().find(|(_, f)| f.used).map(|(&n, _)| n)?;
            self.files.remove(&oldest);
        }
        self.serial += 1;
        self.files.insert(self.serial, File { bytes, used: false });
        Some(self.serial)
    }

    /// The uploaded file `n`.
    pub(crate) fn file(&self, n: u64) -> Option<&File> {
        self.files.get(&n)
    }

    /// Marks file `n` as used by a batch.
    pub(crate) fn use_file(&mut self, n: u64) {
        if let Some(f) = self.files.get_mut(&n) {
            f.used = true;
        }
    }

    /// Counts over every batch so far, held or not, as they stand at `now`.
    pub(crate) fn stats(&self, now: Time) -> BatchStats {
        let mut total = self.evicted;
        for batch in self.batches.values() {
            total += batch.counts(now);
            total.batches += 1;
        }
        total
    }
}

/// The answer the model gave a request, as a batch result.
fn outcome(response: Response, target: Target, catalog: &Catalog, clock: &VirtualClock) -> Outcome {
    Outcome::Refused(match response {
        Response::Ok { .. } => return Outcome::Answered,
        Response::RateLimited { retry_after } => Problem::RateLimited {
            retry_after: clock.real(retry_after),
            limits: catalog.limits(target),
        },
        Response::QuotaExhausted => Problem::QuotaExhausted,
        Response::Overloaded => Problem::Overloaded,
        Response::ServerError { status } => Problem::ServerError { status },
        // An outage that refuses connections: the provider's batch worker could not
        // reach the model.
        Response::ConnectFailed
        | Response::RowRead { .. }
        | Response::RowWritten { .. }
        | Response::WriteConflict { .. } => Problem::ServerError { status: 500 },
    })
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;

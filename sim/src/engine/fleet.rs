//! The modelled store and the replicas' fleet state machines, for a policy whose state
//! is shared (see [`crate::fleet`]). Payloads live in slabs so that events stay small
//! and `Copy`.

use std::collections::BTreeMap;
use std::time::Duration;

use breakwater_core::fleet::{
    BudgetPush, BudgetStore, FleetClock, Op, Replica, Reply, StoreRecord, Update,
};
use breakwater_core::{Key, Registry, Time};

use super::{Ev, Sim};
use crate::fleet::FleetOptions;

/// What the engine must schedule for the fleet.
#[derive(Clone, Copy, Debug)]
pub(super) enum FleetEvent {
    /// An operation reaches the store.
    AtStore { slot: u32 },
    /// The store's answer reaches its replica.
    Answer { slot: u32 },
    /// A pushed record reaches a replica.
    Push { replica: u32, update: u32 },
    /// A budget push reaches the store.
    BudgetAtStore { slot: u32 },
    /// The store's totals reach the replica.
    BudgetAnswer { slot: u32 },
    /// A replica's own timer.
    Timer { replica: u32 },
}

enum OpSlot {
    Sent {
        replica: u32,
        key: Key,
        op: Op,
    },
    Answered {
        replica: u32,
        key: Key,
        reply: Reply,
    },
    Free,
}

enum BudgetSlot {
    Sent {
        replica: u32,
        scope: Key,
        push: BudgetPush,
    },
    Answered {
        replica: u32,
        scope: Key,
        totals: Vec<(u64, i64)>,
    },
    Free,
}

/// The store and the replicas of one shared-state run.
pub(super) struct FleetModel {
    delay: Duration,
    replicas: Vec<Replica>,
    /// Each replica's pending timer.
    timers: Vec<Time>,
    records: BTreeMap<Key, StoreRecord>,
    budgets: BTreeMap<Key, BudgetStore>,
    ops: Vec<OpSlot>,
    free_ops: Vec<u32>,
    budget_slots: Vec<BudgetSlot>,
    free_budgets: Vec<u32>,
    updates: Vec<Update>,
}

impl FleetModel {
    pub(super) fn new(options: &FleetOptions, registries: &[Registry]) -> FleetModel {
        let replicas = registries
            .iter()
            .enumerate()
            .map(|(r, registry)| {
                let mut replica = Replica::new(r as u64, options.config(), FleetClock::identity());
                replica.set_connected(Time::ZERO, registry, true);
                replica
            })
            .collect();
        FleetModel {
            delay: options.propagation,
            replicas,
            timers: vec![Time::MAX; registries.len()],
            records: BTreeMap::new(),
            budgets: BTreeMap::new(),
            ops: Vec::new(),
            free_ops: Vec::new(),
            budget_slots: Vec::new(),
            free_budgets: Vec::new(),
            updates: Vec::new(),
        }
    }

    /// Replica `r` looks at its breakers and budgets: what it sends, and (if `timers`)
    /// its next timer.
    pub(super) fn scan(
        &mut self,
        now: Time,
        r: u32,
        registry: &Registry,
        timers: bool,
        out: &mut Vec<(Time, FleetEvent)>,
    ) {
        let replica = &mut self.replicas[r as usize];
        let at = now + self.delay;
        for (key, op) in replica.poll_ops(now, registry) {
            let slot = take(
                &mut self.ops,
                &mut self.free_ops,
                OpSlot::Sent {
                    replica: r,
                    key,
                    op,
                },
            );
            out.push((at, FleetEvent::AtStore { slot }));
        }
        for (scope, push) in replica.budget_pushes(now, registry) {
            let slot = take(
                &mut self.budget_slots,
                &mut self.free_budgets,
                BudgetSlot::Sent {
                    replica: r,
                    scope,
                    push,
                },
            );
            out.push((at, FleetEvent::BudgetAtStore { slot }));
        }
        if let Some(next) = replica.poll_timeout().filter(|_| timers) {
            // Never at `now` itself: what is due now was just done (and a timer that
            // keeps coming due must not flood the queue).
            let next = next.max(now + Duration::from_millis(1));
            let timer = &mut self.timers[r as usize];
            if *timer <= now || next < *timer {
                *timer = next;
                out.push((next, FleetEvent::Timer { replica: r }));
            }
        }
    }

    /// Whether replica `r`'s timer at `now` is the current one.
    pub(super) fn timer_due(&mut self, now: Time, r: u32) -> bool {
        let timer = &mut self.timers[r as usize];
        if *timer == now {
            *timer = Time::MAX;
            true
        } else {
            false
        }
    }

    /// An operation reaches the store: applied, answered, and pushed if it changed the
    /// record.
    pub(super) fn at_store(
        &mut self,
        now: Time,
        slot: u32,
        replicas: u32,
        out: &mut Vec<(Time, FleetEvent)>,
    ) {
        let OpSlot::Sent { replica, key, op } =
            std::mem::replace(&mut self.ops[slot as usize], OpSlot::Free)
        else {
            return;
        };
        let fleet_now = FleetClock::identity().to_fleet(now);
        let reply = self
            .records
            .entry(key.clone())
            .or_default()
            .apply(&op, fleet_now);
        let at = now + self.delay;
        if reply.changed {
            let update = self.updates.len() as u32;
            self.updates.push(Update {
                name: key.to_string(),
                record: reply.record,
            });
            for other in (0..replicas).filter(|o| *o != replica) {
                out.push((
                    at,
                    FleetEvent::Push {
                        replica: other,
                        update,
                    },
                ));
            }
        }
        self.ops[slot as usize] = OpSlot::Answered {
            replica,
            key,
            reply,
        };
        out.push((at, FleetEvent::Answer { slot }));
    }

    /// The store's answer reaches its replica; returns the replica.
    pub(super) fn answer(&mut self, now: Time, slot: u32, registries: &[Registry]) -> Option<u32> {
        let OpSlot::Answered {
            replica,
            key,
            reply,
        } = std::mem::replace(&mut self.ops[slot as usize], OpSlot::Free)
        else {
            return None;
        };
        self.free_ops.push(slot);
        let registry = &registries[replica as usize];
        let breaker = registry.breaker(&key)?;
        self.replicas[replica as usize].on_reply(now, &key, &breaker, Ok(reply));
        Some(replica)
    }

    /// A pushed record reaches replica `r`.
    pub(super) fn push(&mut self, now: Time, r: u32, update: u32, registry: &Registry) {
        if let Some(update) = self.updates.get(update as usize) {
            self.replicas[r as usize].on_update(now, registry, update);
        }
    }

    /// A budget push reaches the store.
    pub(super) fn budget_at_store(
        &mut self,
        now: Time,
        slot: u32,
        out: &mut Vec<(Time, FleetEvent)>,
    ) {
        let BudgetSlot::Sent {
            replica,
            scope,
            push,
        } = std::mem::replace(&mut self.budget_slots[slot as usize], BudgetSlot::Free)
        else {
            return;
        };
        let totals = self.budgets.entry(scope.clone()).or_default().apply(&push);
        self.budget_slots[slot as usize] = BudgetSlot::Answered {
            replica,
            scope,
            totals,
        };
        out.push((now + self.delay, FleetEvent::BudgetAnswer { slot }));
    }

    /// The store's totals reach their replica; returns it.
    pub(super) fn budget_answer(
        &mut self,
        now: Time,
        slot: u32,
        registries: &[Registry],
    ) -> Option<u32> {
        let BudgetSlot::Answered {
            replica,
            scope,
            totals,
        } = std::mem::replace(&mut self.budget_slots[slot as usize], BudgetSlot::Free)
        else {
            return None;
        };
        self.free_budgets.push(slot);
        let registry = &registries[replica as usize];
        self.replicas[replica as usize].on_budget_reply(now, registry, &scope, Ok(&totals));
        Some(replica)
    }
}

impl Sim<'_> {
    /// After a step of a request on `replica` (or a fleet message to it): its fleet
    /// machine looks at the breakers, and the outage measure at whether it stopped.
    /// Inlined, so that a run with neither (most runs) pays two tests per step, not a
    /// call.
    #[inline]
    pub(super) fn after_step(&mut self, now: Time, replica: u32) {
        if self.fleet.is_some() || self.outage.is_some() {
            self.look_after_step(now, replica);
        }
    }

    fn look_after_step(&mut self, now: Time, replica: u32) {
        if let Some(fleet) = &mut self.fleet {
            // Periodic polls stop with the traffic (or they would run forever); what
            // requests still in flight do is still shared.
            let timers = now < Time::ZERO + self.scenario.duration;
            fleet.scan(
                now,
                replica,
                &self.registries[replica as usize],
                timers,
                &mut self.fleet_out,
            );
            for (at, event) in self.fleet_out.drain(..) {
                self.queue.schedule(at, Ev::Fleet(event));
            }
        }
        if let Some(outage) = &mut self.outage
            && outage.watching(now, replica as usize)
        {
            let route = &self.routes[replica as usize];
            let stopped = (0..route.len()).any(|step| {
                self.targets[step].0 as usize == outage.provider
                    && route
                        .breaker(step)
                        .is_some_and(|b| b.state(now) != breakwater_core::State::Closed)
            });
            if stopped {
                outage.stop(now, replica as usize);
            }
        }
    }

    pub(super) fn on_fleet(&mut self, now: Time, event: FleetEvent) {
        let Some(fleet) = &mut self.fleet else { return };
        let replicas = self.registries.len() as u32;
        let touched = match event {
            FleetEvent::AtStore { slot } => {
                fleet.at_store(now, slot, replicas, &mut self.fleet_out);
                None
            }
            FleetEvent::Answer { slot } => fleet.answer(now, slot, self.registries),
            FleetEvent::Push { replica, update } => {
                fleet.push(now, replica, update, &self.registries[replica as usize]);
                Some(replica)
            }
            FleetEvent::BudgetAtStore { slot } => {
                fleet.budget_at_store(now, slot, &mut self.fleet_out);
                None
            }
            FleetEvent::BudgetAnswer { slot } => fleet.budget_answer(now, slot, self.registries),
            FleetEvent::Timer { replica } => fleet.timer_due(now, replica).then_some(replica),
        };
        for (at, event) in self.fleet_out.drain(..) {
            self.queue.schedule(at, Ev::Fleet(event));
        }
        if let Some(replica) = touched {
            self.after_step(now, replica);
        }
    }
}

/// Puts `value` in a free slot (or a new one); returns the slot.
fn take<T>(slots: &mut Vec<T>, free: &mut Vec<u32>, value: T) -> u32 {
    match free.pop() {
        Some(slot) => {
            slots[slot as usize] = value;
            slot
        }
        None => {
            slots.push(value);
            (slots.len() - 1) as u32
        }
    }
}

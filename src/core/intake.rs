//! The order of requests: socket connections are numbered as they are
//! accepted, and their requests join the outbox in that order.
//!
//! Each connection has its own thread, so two requests written back to back
//! (Jeedom's PHP: connect, write, close, next) can reach the core in either
//! order. A connection that has not sent a whole request within a short time
//! says it is idle, and later ones stop waiting for it: an idle connection
//! held open by another process cannot stall Jeedom's requests.
use crate::bus::{Reply, TicketState};
use crate::model::Outgoing;
use std::collections::BTreeMap;

/// Connections whose outcome is known or awaited, by ticket.
#[derive(Debug, Default)]
pub struct Intake {
    /// First ticket not yet taken.
    next: u64,
    slots: BTreeMap<u64, TicketState>,
}

impl Intake {
    /// Records what became of `ticket`; returns the requests now due, in order.
    pub fn report(&mut self, ticket: u64, state: TicketState) -> Vec<(Outgoing, Reply)> {
        if ticket < self.next {
            // Late: it was idle, and those after it went ahead.
            return match state {
                TicketState::Accept { item, reply } => vec![(*item, reply)],
                _ => Vec::new(),
            };
        }
        self.slots.insert(ticket, state);
        self.take_due()
    }

    fn take_due(&mut self) -> Vec<(Outgoing, Reply)> {
        let mut due = Vec::new();
        while let Some(entry) = self.slots.first_entry() {
            if *entry.key() != self.next || matches!(entry.get(), TicketState::Reading) {
                break;
            }
            if let TicketState::Accept { item, reply } = entry.remove() {
                due.push((*item, reply));
            }
            self.next += 1;
        }
        due
    }

    /// Connections still awaited.
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn item(key: &str) -> TicketState {
        let (tx, _rx) = mpsc::channel();
        let item = Box::new(crate::core::fixtures::send(key));
        let reply = Reply::channel(tx);
        TicketState::Accept { item, reply }
    }

    fn keys(due: Vec<(Outgoing, Reply)>) -> Vec<String> {
        due.into_iter().map(|(o, _)| o.key).collect()
    }

    #[test]
    fn requests_arriving_out_of_order_are_taken_in_connection_order() {
        let mut i = Intake::default();
        assert!(keys(i.report(2, item("c"))).is_empty());
        assert!(keys(i.report(1, item("b"))).is_empty());
        assert_eq!(keys(i.report(0, item("a"))), ["a", "b", "c"]);
        assert_eq!(i.waiting(), 0);
    }

    #[test]
    fn a_request_being_spooled_holds_the_later_ones() {
        let mut i = Intake::default();
        assert!(keys(i.report(0, TicketState::Reading)).is_empty());
        assert!(keys(i.report(1, item("b"))).is_empty());
        assert_eq!(keys(i.report(0, item("a"))), ["a", "b"]);
    }

    #[test]
    fn an_idle_connection_is_passed_and_its_request_taken_when_it_comes() {
        let mut i = Intake::default();
        assert!(keys(i.report(1, item("b"))).is_empty());
        assert_eq!(keys(i.report(0, TicketState::Idle)), ["b"]);
        assert_eq!(keys(i.report(0, item("late"))), ["late"]);
        assert_eq!(keys(i.report(2, TicketState::Done)), Vec::<String>::new());
        assert_eq!(keys(i.report(3, item("d"))), ["d"]);
    }

    #[test]
    fn an_idle_connection_behind_a_busy_one_keeps_its_place() {
        let mut i = Intake::default();
        i.report(0, TicketState::Reading);
        i.report(1, TicketState::Idle);
        i.report(1, item("b"));
        assert_eq!(keys(i.report(0, item("a"))), ["a", "b"]);
    }
}

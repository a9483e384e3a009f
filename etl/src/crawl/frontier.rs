//! The frontier: requests waiting, requests in flight, and every URL already queued.
//!
//! A URL is queued at most once per crawl (resumes included, through the checkpoint): that is
//! what ends a cursor loop, and what keeps a gallery's pages from being walked twice. A snapshot
//! for the checkpoint holds the in-flight requests too, since their results are not committed.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::sources::Request;

/// Identifies a popped request until it is done.
pub type Ticket = u64;

/// Waiting and in-flight requests plus the set of URLs seen.
#[derive(Debug, Default)]
pub struct Frontier {
    queue: VecDeque<Request>,
    in_flight: HashMap<Ticket, Request>,
    seen: HashSet<String>,
    next_ticket: Ticket,
}

/// What [`Frontier::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Already seen this crawl: dropped.
    AlreadySeen,
}

impl Frontier {
    /// A frontier restored from a checkpoint (`pending` requests are re-queued even though
    /// their URLs are in `seen`).
    pub fn restore(pending: Vec<Request>, seen: Vec<String>) -> Frontier {
        let mut seen: HashSet<String> = seen.into_iter().collect();
        seen.extend(pending.iter().map(|r| r.url.clone()));
        Frontier {
            queue: pending.into(),
            seen,
            ..Frontier::default()
        }
    }

    /// Queues `request` unless its URL was seen.
    pub fn push(&mut self, request: Request) -> Pushed {
        if self.seen.insert(request.url.clone()) {
            self.queue.push_back(request);
            Pushed::Queued
        } else {
            Pushed::AlreadySeen
        }
    }

    /// Takes the next request, marking it in flight.
    pub fn pop(&mut self) -> Option<(Ticket, Request)> {
        let request = self.queue.pop_front()?;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.in_flight.insert(ticket, request.clone());
        Some((ticket, request))
    }

    /// Marks a popped request finished.
    pub fn done(&mut self, ticket: Ticket) {
        self.in_flight.remove(&ticket);
    }

    /// Nothing waiting and nothing in flight.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// Requests not yet finished (in flight first, in the order they were popped), then waiting.
    pub fn pending(&self) -> Vec<Request> {
        let mut in_flight: Vec<(&Ticket, &Request)> = self.in_flight.iter().collect();
        in_flight.sort_by_key(|(t, _)| **t);
        in_flight
            .into_iter()
            .map(|(_, r)| r.clone())
            .chain(self.queue.iter().cloned())
            .collect()
    }

    /// Every URL seen.
    pub fn seen(&self) -> Vec<String> {
        self.seen.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::RequestKind;

    fn req(url: &str) -> Request {
        Request::new("s", url, RequestKind::Listing)
    }

    #[test]
    fn frontier_dedups_and_snapshots_in_flight() {
        let mut f = Frontier::default();
        assert_eq!(f.push(req("a")), Pushed::Queued);
        assert_eq!(f.push(req("b")), Pushed::Queued);
        assert_eq!(f.push(req("a")), Pushed::AlreadySeen);
        let (ta, a) = f.pop().unwrap();
        assert_eq!(a.url, "a");
        assert_eq!(f.pending(), vec![req("a"), req("b")]);
        f.done(ta);
        assert_eq!(f.pending(), vec![req("b")]);
        let restored = Frontier::restore(f.pending(), f.seen());
        let mut restored = restored;
        assert_eq!(restored.push(req("a")), Pushed::AlreadySeen);
        assert_eq!(restored.pop().unwrap().1, req("b"));
        assert!(restored.pop().is_none());
    }
}

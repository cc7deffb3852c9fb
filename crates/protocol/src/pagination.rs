//! Paginated lists: [`Page`], the [`Paginated`] endpoints, and [`Pager`], the flow that walks
//! every item of a list.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use http::Response;
use serde::{Deserialize, Serialize};

use crate::call::Call;
use crate::endpoint::Endpoint;
use crate::flow::{Flow, Step};
use crate::retry::RetryPolicy;
use crate::{Config, Error, PaginationError, TransportError};

/// How many pages a [`Pager`] reads by default before it stops with
/// [`PaginationError::TooManyPages`] (at the API's 100 items a page, 100,000 items). Raise it with
/// [`Pager::max_pages`].
pub const DEFAULT_MAX_PAGES: usize = 1_000;

/// One page of a list: `{"previous": url|null, "next": url|null, "results": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, newest first.
    pub results: Vec<T>,
    /// The absolute URL of the next page, as the server wrote it. Never requested as is: see
    /// [`Page::next_cursor`].
    #[serde(default)]
    pub next: Option<String>,
    /// The absolute URL of the previous page, as the server wrote it.
    #[serde(default)]
    pub previous: Option<String>,
}

impl<T> Page<T> {
    /// The opaque cursor of the next page, taken from the `cursor` query parameter of `next`.
    /// Only the cursor is kept, so the next request goes to the configured base URL (a proxy),
    /// not to the host written in the body.
    pub fn next_cursor(&self) -> Option<String> {
        self.next.as_deref().and_then(cursor_of)
    }

    /// The cursor of the previous page.
    pub fn previous_cursor(&self) -> Option<String> {
        self.previous.as_deref().and_then(cursor_of)
    }
}

/// Extracts and percent-decodes the `cursor` query parameter of a URL.
pub fn cursor_of(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == "cursor" && !v.is_empty()).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// A list endpoint that can be asked for another page by cursor.
pub trait Paginated: Endpoint<Output = Page<Self::Item>> + Sized {
    /// The item type.
    type Item;

    /// The same list, at another cursor.
    fn with_cursor(&self, cursor: Option<String>) -> Self;

    /// The cursor this request asks for.
    fn cursor(&self) -> Option<&str>;

    /// The request for the page after `page`, or `None` when it was the last. A page whose next
    /// cursor equals the current one ends the listing rather than looping forever.
    fn next_page(&self, page: &Page<Self::Item>) -> Option<Self> {
        let next = page.next_cursor()?;
        if self.cursor() == Some(next.as_str()) {
            return None;
        }
        Some(self.with_cursor(Some(next)))
    }
}

/// Walks every item of a paginated list, one page at a time, each page requested from the
/// configured base URL with only the previous page's cursor. A [`Flow`]: it yields the items
/// ([`Step::Yield`]) and ends with `Ok(())`, or with the error that stopped it (after yielding
/// the items of the pages read before).
///
/// Memory is bounded by one page; time by the page cap ([`DEFAULT_MAX_PAGES`], see
/// [`Pager::max_pages`]) and the retry policy of each page. A server whose `next` cursor names a
/// page already read (A → B → A) ends the listing with [`PaginationError::CursorCycle`] instead
/// of looping.
///
/// ```
/// use replicate_protocol::{Config, Flow, ListPredictions, Pager, Step};
/// let mut pager = Pager::new(Config::new("r8_token"), ListPredictions::new());
/// let Step::Send(out) = pager.poll(std::time::Instant::now()) else { panic!() };
/// assert_eq!(out.request.uri(), "https://api.replicate.com/v1/predictions");
/// ```
pub struct Pager<P: Paginated> {
    cfg: Config,
    retry: RetryPolicy,
    next: Option<P>,
    call: Option<Call<P>>,
    buffer: VecDeque<P::Item>,
    seen: HashSet<String>,
    pages: usize,
    max_pages: usize,
    outcome: Option<Result<(), Error>>,
}

impl<P: Paginated + std::fmt::Debug> std::fmt::Debug for Pager<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("next", &self.next)
            .field("buffered", &self.buffer.len())
            .field("pages", &self.pages)
            .field("max_pages", &self.max_pages)
            .finish_non_exhaustive()
    }
}

impl<P: Paginated> Pager<P> {
    /// A pager starting at `first`, with the default retry policy and page cap.
    pub fn new(cfg: Config, first: P) -> Self {
        let mut seen = HashSet::new();
        if let Some(c) = first.cursor() {
            seen.insert(c.to_owned());
        }
        Pager {
            cfg,
            retry: RetryPolicy::default(),
            next: Some(first),
            call: None,
            buffer: VecDeque::new(),
            seen,
            pages: 0,
            max_pages: DEFAULT_MAX_PAGES,
            outcome: None,
        }
    }

    /// The same pager, retrying each page with `policy`.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The same pager, reading at most `max_pages` pages (at least 1) before it stops with
    /// [`PaginationError::TooManyPages`].
    pub fn max_pages(mut self, max_pages: usize) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    /// How many pages were read so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Takes in a page: its items, and the request of the next one, unless it would loop or go
    /// past the cap.
    fn push_page(&mut self, request: &P, page: Page<P::Item>) {
        self.pages += 1;
        let next = request.next_page(&page);
        self.buffer.extend(page.results);
        let Some(next) = next else {
            self.outcome = Some(Ok(()));
            return;
        };
        let cursor = next.cursor().unwrap_or_default().to_owned();
        if !self.seen.insert(cursor.clone()) {
            self.outcome = Some(Err(Error::Pagination(PaginationError::CursorCycle {
                cursor,
                page: self.pages,
            })));
        } else if self.pages >= self.max_pages {
            self.outcome = Some(Err(Error::Pagination(PaginationError::TooManyPages {
                max_pages: self.max_pages,
            })));
        } else {
            self.next = Some(next);
        }
    }
}

impl<P: Paginated> Flow for Pager<P> {
    type Item = P::Item;
    type Output = Result<(), Error>;

    fn poll(&mut self, now: Instant) -> Step<P::Item, Result<(), Error>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return Step::Yield(item);
            }
            if let Some(outcome) = &self.outcome {
                return Step::Done(outcome.clone());
            }
            let call = match &mut self.call {
                Some(call) => call,
                None => match self.next.take() {
                    Some(next) => self.call.insert(Call::with_policy(
                        next,
                        self.cfg.clone(),
                        self.retry.clone(),
                        None,
                    )),
                    None => return Step::Done(Ok(())),
                },
            };
            match call.poll(now) {
                Step::Send(out) => return Step::Send(out),
                Step::Receive => return Step::Receive,
                Step::Sleep { until, reason } => return Step::Sleep { until, reason },
                Step::Yield(never) => match never {},
                Step::Done(Ok(page)) => {
                    if let Some(call) = self.call.take() {
                        self.push_page(call.endpoint(), page);
                    }
                }
                Step::Done(Err(e)) => {
                    self.call = None;
                    self.outcome = Some(Err(e));
                }
            }
        }
    }

    fn handle_response(&mut self, response: Response<Vec<u8>>, now: Instant) {
        if let Some(call) = &mut self.call {
            call.handle_response(response, now);
        }
    }

    fn handle_error(&mut self, error: TransportError, now: Instant) {
        if let Some(call) = &mut self.call {
            call.handle_error(error, now);
        }
    }

    fn describe(&self) -> crate::FlowInfo {
        crate::FlowInfo::new("list")
    }
}

//! Reading everything a target lists (`/Users`, `/Groups`) with `startIndex` and `count`
//! (RFC 7644 §3.4.2.4), robust to the targets met in practice: a page with fewer items than
//! asked (the next page starts after the items received), a target that ignores `count` (one
//! page holds everything), and a listing that changes while it is read (its `totalResults`
//! moves, so positions shift and items can be skipped or seen twice). A pass whose
//! `totalResults` stayed put and which received that many distinct items is stable; otherwise
//! the listing is read again, and the last stable pass is the answer.

use serde_json::Value;
use std::collections::HashSet;
use std::future::Future;

/// Items asked for per page.
pub const PAGE_SIZE: u64 = 500;
/// Passes before giving up on a stable read.
pub const MAX_PASSES: u32 = 3;
/// Pages per pass at most (a guard against a target whose paging never ends).
pub const MAX_PAGES_PER_PASS: u64 = 20_000;

/// What a read returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// The resources (as the read's conversion made them), each id once, in the order listed.
    pub resources: Vec<T>,
    /// Passes read.
    pub passes: u32,
    /// Pages read over all passes.
    pub pages: u64,
    /// Whether the answer comes from a pass during which the listing did not change. When no
    /// pass was stable, the answer is every resource any pass saw.
    pub stable: bool,
    /// Resources listed without an `id`, or that the conversion refused (left out).
    pub without_id: u64,
}

struct Pass<T> {
    resources: Vec<(String, T)>,
    ids: HashSet<String>,
    pages: u64,
    stable: bool,
    without_id: u64,
}

async fn read_pass<T, F, Fut, E>(
    fetch: &mut F,
    page_size: u64,
    convert: &impl Fn(&Value) -> Option<T>,
) -> Result<Pass<T>, E>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Value, E>>,
{
    let mut pass = Pass {
        resources: Vec::new(),
        ids: HashSet::new(),
        pages: 0,
        stable: true,
        without_id: 0,
    };
    let mut totals: Vec<Option<u64>> = Vec::new();
    let mut received = 0u64;
    let mut start = 1u64;
    while pass.pages < MAX_PAGES_PER_PASS {
        let body = fetch(start, page_size).await?;
        pass.pages += 1;
        let total = body.get("totalResults").and_then(Value::as_u64);
        totals.push(total);
        let items = match body.get("Resources").and_then(Value::as_array) {
            Some(items) if !items.is_empty() => items,
            _ => break,
        };
        received += items.len() as u64;
        start += items.len() as u64;
        for item in items {
            match item.get("id").and_then(Value::as_str).filter(|id| !id.is_empty()) {
                Some(id) => {
                    if pass.ids.insert(id.to_owned()) {
                        match convert(item) {
                            Some(converted) => pass.resources.push((id.to_owned(), converted)),
                            None => pass.without_id += 1,
                        }
                    }
                }
                None => pass.without_id += 1,
            }
        }
        if total.is_some_and(|total| start > total) {
            break;
        }
    }
    let first = totals.first().copied().flatten();
    let unchanged = totals.iter().all(|total| *total == first);
    // Every item received once: none seen twice because the listing shifted under the read.
    let complete =
        first.is_none_or(|total| received == total && pass.resources.len() as u64 + pass.without_id == total);
    pass.stable = unchanged && complete && pass.pages < MAX_PAGES_PER_PASS;
    Ok(pass)
}

/// Reads every resource `fetch(start_index, count)` lists, `page_size` at a time, until a pass is
/// stable or [`MAX_PASSES`] were read. Each resource is kept as `convert` makes it (as soon as its
/// page arrives, so the parsed pages are not all held at once); one it refuses is left out.
pub async fn read_all<T, F, Fut, E>(
    mut fetch: F,
    page_size: u64,
    convert: impl Fn(&Value) -> Option<T>,
) -> Result<Listing<T>, E>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Value, E>>,
{
    let page_size = page_size.max(1);
    let mut pages = 0;
    let mut union: Vec<T> = Vec::new();
    let mut union_ids: HashSet<String> = HashSet::new();
    let mut without_id = 0;
    for passes in 1..=MAX_PASSES {
        let pass = read_pass(&mut fetch, page_size, &convert).await?;
        pages += pass.pages;
        if pass.stable {
            return Ok(Listing {
                resources: pass.resources.into_iter().map(|(_, resource)| resource).collect(),
                passes,
                pages,
                stable: true,
                without_id: pass.without_id,
            });
        }
        without_id = without_id.max(pass.without_id);
        for (id, resource) in pass.resources {
            if union_ids.insert(id) {
                union.push(resource);
            }
        }
    }
    Ok(Listing {
        resources: union,
        passes: MAX_PASSES,
        pages,
        stable: false,
        without_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    /// What happens to the listing after a page is served (the page's number, the items).
    type PageHook = Box<dyn Fn(u64, &mut Vec<String>)>;

    /// A listing served from `items` as a target would page it: `cap` items per page at most
    /// (`None`: honours `count`), `ignore_count` returns everything at once, and `on_page` may
    /// change the items after a page is served.
    struct Listed {
        items: RefCell<Vec<String>>,
        cap: Option<usize>,
        ignore_count: bool,
        served: RefCell<u64>,
        on_page: PageHook,
    }

    impl Listed {
        fn new(n: usize) -> Self {
            Self {
                items: RefCell::new((1..=n).map(|i| format!("u{i}")).collect()),
                cap: None,
                ignore_count: false,
                served: RefCell::new(0),
                on_page: Box::new(|_, _| {}),
            }
        }

        fn page(&self, start: u64, count: u64) -> Value {
            let items = self.items.borrow().clone();
            let from = (start as usize).saturating_sub(1).min(items.len());
            let mut take = if self.ignore_count { items.len() } else { count as usize };
            if let Some(cap) = self.cap {
                take = take.min(cap);
            }
            let page: Vec<Value> = items[from..(from + take).min(items.len())]
                .iter()
                .map(|id| json!({"id": id}))
                .collect();
            let body = json!({"totalResults": items.len(), "Resources": page});
            *self.served.borrow_mut() += 1;
            let served = *self.served.borrow();
            (self.on_page)(served, &mut self.items.borrow_mut());
            body
        }
    }

    fn keep(value: &Value) -> Option<Value> {
        Some(value.clone())
    }

    async fn read(listed: &Listed, page_size: u64) -> Listing<Value> {
        read_all(
            |start, count| std::future::ready(Ok::<_, ()>(listed.page(start, count))),
            page_size,
            keep,
        )
        .await
        .unwrap()
    }

    fn ids(listing: &Listing<Value>) -> Vec<String> {
        listing
            .resources
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn every_item_once_whatever_the_page_sizes() {
        let expected: Vec<String> = (1..=1234).map(|i| format!("u{i}")).collect();
        for (cap, ignore_count) in [(None, false), (Some(7), false), (Some(1), false), (None, true)] {
            let mut listed = Listed::new(1234);
            listed.cap = cap;
            listed.ignore_count = ignore_count;
            let listing = read(&listed, 100).await;
            assert!(listing.stable, "{cap:?} {ignore_count}");
            assert_eq!(listing.passes, 1);
            assert_eq!(ids(&listing), expected, "{cap:?} {ignore_count}");
        }
        let listing = read(&Listed::new(0), 100).await;
        assert!(listing.stable && listing.resources.is_empty() && listing.pages == 1);
    }

    #[tokio::test]
    async fn a_listing_that_shrinks_while_read_is_read_again() {
        // After the first page, the first 30 items are deleted: the positions shift, and a single
        // pass would skip 30 items of the later pages.
        let mut listed = Listed::new(500);
        listed.on_page = Box::new(|served, items| {
            if served == 1 {
                items.drain(0..30);
            }
        });
        let listing = read(&listed, 100).await;
        assert!(listing.stable);
        assert_eq!(listing.passes, 2);
        let expected: Vec<String> = (31..=500).map(|i| format!("u{i}")).collect();
        assert_eq!(ids(&listing), expected);
    }

    #[tokio::test]
    async fn a_listing_that_grows_while_read_is_read_again() {
        let mut listed = Listed::new(300);
        listed.on_page = Box::new(|served, items| {
            if served == 2 {
                items.insert(0, "new".into());
            }
        });
        let listing = read(&listed, 100).await;
        assert!(listing.stable);
        assert_eq!(listing.passes, 2);
        assert_eq!(listing.resources.len(), 301);
        assert_eq!(ids(&listing)[0], "new");
    }

    #[tokio::test]
    async fn a_listing_that_never_settles_gives_every_item_seen() {
        let mut listed = Listed::new(250);
        listed.on_page = Box::new(|served, items| {
            if served % 2 == 1 {
                items.remove(0);
            }
        });
        let listing = read(&listed, 100).await;
        assert!(!listing.stable);
        assert_eq!(listing.passes, MAX_PASSES);
        // Every item that was never deleted was seen.
        let seen: HashSet<String> = ids(&listing).into_iter().collect();
        for item in listed.items.borrow().iter() {
            assert!(seen.contains(item), "{item} missing");
        }
    }

    #[tokio::test]
    async fn items_without_an_id_are_counted_and_left_out() {
        let body = json!({"totalResults": 3, "Resources": [{"id": "a"}, {"userName": "x"}, {"id": ""}]});
        let listing = read_all(|_, _| std::future::ready(Ok::<_, ()>(body.clone())), 10, keep)
            .await
            .unwrap();
        assert_eq!(listing.resources.len(), 1);
        assert_eq!(listing.without_id, 2);
        assert!(listing.stable);
    }

    #[tokio::test]
    async fn a_failed_page_fails_the_read() {
        let result = read_all(|_, _| std::future::ready(Err::<Value, _>("down")), 10, keep).await;
        assert_eq!(result, Err("down"));
    }
}

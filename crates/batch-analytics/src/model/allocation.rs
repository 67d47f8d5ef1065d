//! Who held which GPU when: the allocation labels the fleet tables (`waste`,
//! `energy_by_owner`) are keyed by. Pure data and lookups; reading a labels file is
//! [`crate::allocations`].

use std::collections::HashMap;

/// The owner of an allocation: a user's job, optionally in a project.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    /// User name.
    pub user: String,
    /// Job id or name.
    pub job: String,
    /// Project (account), when the labels give one.
    pub project: Option<String>,
}

/// Index of an [`Owner`] in [`Allocations::owners`].
pub type OwnerId = u32;

/// One labelled allocation, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Where it was given (a line number), for errors.
    pub line: usize,
    /// Host.
    pub host: String,
    /// GPU id within the host (the samples' `gpu`), or `None` for every GPU of the host.
    pub gpu: Option<String>,
    /// First instant, µs since the epoch (UTC), inclusive.
    pub start_us: i64,
    /// Last instant, µs, exclusive.
    pub end_us: i64,
    /// Who held it.
    pub owner: Owner,
}

/// A time range of one GPU held by one owner: `start_us <= t < end_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First instant, µs, inclusive.
    pub start_us: i64,
    /// Last instant, µs, exclusive.
    pub end_us: i64,
    /// Who held the GPU.
    pub owner: OwnerId,
}

/// Two allocations that claim the same GPU at the same time: their lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    /// The earlier-starting allocation's line.
    pub first: usize,
    /// The other one's line.
    pub second: usize,
}

/// Every allocation of a labels source, checked: no GPU is held by two owners at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocations {
    owners: Vec<Owner>,
    /// Host → its allocations as (GPU or every GPU, segment).
    by_host: HashMap<String, Vec<(Option<String>, Segment)>>,
}

impl Allocations {
    /// Checks and indexes `rows`. Fails on the first pair of rows that hold one GPU at
    /// overlapping times (a row for every GPU of a host overlaps each GPU's rows).
    pub fn new(rows: Vec<Allocation>) -> Result<Allocations, Overlap> {
        let mut owners = Vec::new();
        let mut ids: HashMap<Owner, OwnerId> = HashMap::new();
        let mut by_host: HashMap<String, Vec<(Option<String>, Segment, usize)>> = HashMap::new();
        for row in rows {
            let next = owners.len() as OwnerId;
            let owner = *ids.entry(row.owner.clone()).or_insert_with(|| {
                owners.push(row.owner.clone());
                next
            });
            let segment = Segment {
                start_us: row.start_us,
                end_us: row.end_us,
                owner,
            };
            by_host
                .entry(row.host)
                .or_default()
                .push((row.gpu, segment, row.line));
        }
        for rows in by_host.values_mut() {
            rows.sort_by_key(|(_, s, line)| (s.start_us, *line));
            check_overlaps(rows)?;
        }
        Ok(Allocations {
            owners,
            by_host: by_host
                .into_iter()
                .map(|(host, rows)| (host, rows.into_iter().map(|(g, s, _)| (g, s)).collect()))
                .collect(),
        })
    }

    /// The distinct owners, by [`OwnerId`].
    pub fn owners(&self) -> &[Owner] {
        &self.owners
    }

    /// The owner of `id`.
    pub fn owner(&self, id: OwnerId) -> Option<&Owner> {
        self.owners.get(id as usize)
    }

    /// Number of allocations.
    pub fn len(&self) -> usize {
        self.by_host.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segments of one GPU (its own rows and its host's every-GPU rows), sorted by
    /// start and disjoint.
    pub fn segments(&self, host: &str, gpu: &str) -> Vec<Segment> {
        let Some(rows) = self.by_host.get(host) else {
            return Vec::new();
        };
        rows.iter()
            .filter(|(g, _)| g.as_deref().is_none_or(|g| g == gpu))
            .map(|(_, s)| *s)
            .collect()
    }
}

/// Checks rows of one host, sorted by start: two rows overlap when they cover the same
/// GPU (or one covers every GPU) and neither ends before the other starts.
fn check_overlaps(rows: &[(Option<String>, Segment, usize)]) -> Result<(), Overlap> {
    // Per GPU, and for the every-GPU rows, the latest end so far and its line: rows are
    // sorted by start, so a row overlaps an earlier one exactly when it starts before
    // the latest end among the rows that can clash with it.
    let mut wildcard: Option<(i64, usize)> = None;
    let mut per_gpu: HashMap<&str, (i64, usize)> = HashMap::new();
    for (gpu, s, line) in rows {
        let earlier: Vec<(i64, usize)> = match gpu {
            None => per_gpu.values().copied().chain(wildcard).collect(),
            Some(g) => per_gpu
                .get(g.as_str())
                .copied()
                .into_iter()
                .chain(wildcard)
                .collect(),
        };
        // Several may clash: name the first given, so the message does not depend on
        // hash order.
        if let Some((_, first)) = earlier
            .into_iter()
            .filter(|(end, _)| s.start_us < *end)
            .min_by_key(|(_, line)| *line)
        {
            return Err(Overlap {
                first,
                second: *line,
            });
        }
        match gpu {
            None => {
                if wildcard.is_none_or(|(e, _)| s.end_us > e) {
                    wildcard = Some((s.end_us, *line));
                }
            }
            Some(g) => {
                let e = per_gpu.entry(g.as_str()).or_insert((s.end_us, *line));
                if s.end_us > e.0 {
                    *e = (s.end_us, *line);
                }
            }
        }
    }
    Ok(())
}

/// The owner of the segment holding `t_us`, if any (`segments` sorted and disjoint).
pub fn owner_at(segments: &[Segment], t_us: i64) -> Option<OwnerId> {
    let i = segments.partition_point(|s| s.start_us <= t_us);
    let s = segments.get(i.checked_sub(1)?)?;
    (t_us < s.end_us).then_some(s.owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: usize, gpu: Option<&str>, start: i64, end: i64, user: &str) -> Allocation {
        Allocation {
            line,
            host: "h".into(),
            gpu: gpu.map(str::to_string),
            start_us: start,
            end_us: end,
            owner: Owner {
                user: user.into(),
                job: format!("job-{user}"),
                project: None,
            },
        }
    }

    #[test]
    fn lookups_are_half_open_and_host_rows_cover_every_gpu() {
        let a = Allocations::new(vec![
            row(2, Some("gpu0"), 10, 20, "alice"),
            row(3, Some("gpu0"), 20, 30, "bob"),
            row(4, None, 40, 50, "carol"),
            row(5, Some("gpu1"), 10, 40, "alice"),
        ])
        .expect("no overlap");
        assert_eq!(a.owners().len(), 3, "alice once");
        let g0 = a.segments("h", "gpu0");
        assert_eq!(g0.len(), 3);
        let name = |t| {
            owner_at(&g0, t)
                .and_then(|o| a.owner(o))
                .map(|o| o.user.clone())
        };
        assert_eq!(name(9), None);
        assert_eq!(name(10).as_deref(), Some("alice"));
        assert_eq!(name(19).as_deref(), Some("alice"));
        assert_eq!(name(20).as_deref(), Some("bob"));
        assert_eq!(name(30), None);
        assert_eq!(name(45).as_deref(), Some("carol"));
        assert_eq!(name(50), None);
        assert_eq!(a.segments("h", "gpu7").len(), 1, "the host row");
        assert!(a.segments("other", "gpu0").is_empty());
    }

    #[test]
    fn overlaps_name_both_lines() {
        let e = Allocations::new(vec![
            row(2, Some("gpu0"), 10, 20, "a"),
            row(3, Some("gpu1"), 15, 25, "b"),
            row(4, Some("gpu0"), 19, 30, "c"),
        ])
        .expect_err("gpu0 twice at 19");
        assert_eq!(
            e,
            Overlap {
                first: 2,
                second: 4
            }
        );
        // A host-wide row clashes with any GPU's row, in either order.
        let e = Allocations::new(vec![
            row(7, Some("gpu3"), 10, 20, "a"),
            row(8, None, 5, 11, "b"),
        ])
        .expect_err("host row over gpu3");
        assert_eq!(
            e,
            Overlap {
                first: 8,
                second: 7
            }
        );
        let e = Allocations::new(vec![
            row(2, None, 0, 100, "a"),
            row(3, Some("gpu0"), 50, 60, "b"),
        ])
        .expect_err("gpu0 inside the host row");
        assert_eq!(
            e,
            Overlap {
                first: 2,
                second: 3
            }
        );
        // Back to back is not an overlap.
        Allocations::new(vec![
            row(2, None, 0, 10, "a"),
            row(3, Some("g"), 10, 20, "b"),
        ])
        .expect("touching");
    }
}

//! The detector kinds, listed once. [`RuleKind`] (a rule's kind and parameters), the
//! per-GPU memory of each, and the reading of their tables from a rules file all follow
//! from the list at the bottom of this file.

use std::time::Duration;

use gpustream::{AnomalyState, Sample};
use serde::de::{self, MapAccess};

use super::kind::{DetectorKind, Observation};
use crate::rules::{Rule, RuleTable};

/// Declares the kinds: `Variant(Type),` per kind, each `Type` a [`DetectorKind`].
macro_rules! detector_kinds {
    ($( $(#[$doc:meta])* $variant:ident($kind:ty), )*) => {
        /// What a rule detects, with its parameters: one variant per detector kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum RuleKind {
            $( $(#[$doc])* $variant($kind), )*
        }

        /// One rule's memory of one GPU: its kind's [`DetectorKind::Memory`].
        #[derive(Debug, Clone)]
        pub(crate) enum Memory {
            $( $variant(<$kind as DetectorKind>::Memory), )*
        }

        /// A rule table as read from a file, before its kind has checked it.
        pub(crate) enum RawRule {
            $( $variant(<$kind as DetectorKind>::Table), )*
        }

        impl RuleKind {
            /// The rules file's arrays of tables, one per kind, in evaluation order.
            pub const TABLES: &'static [&'static str] = &[$( <$kind as DetectorKind>::TABLE, )*];

            /// The kind's array of tables in a rules file (`threshold`, ...).
            pub fn table(&self) -> &'static str {
                match self {
                    $( RuleKind::$variant(_) => <$kind as DetectorKind>::TABLE, )*
                }
            }

            /// The level and clear level an override may replace ([`DetectorKind::levels`]).
            pub fn levels(&self) -> Option<(f64, f64)> {
                match self {
                    $( RuleKind::$variant(k) => k.levels(), )*
                }
            }

            /// Replaces the levels ([`DetectorKind::set_levels`]).
            pub fn set_levels(&mut self, level: f64, clear: f64) {
                match self {
                    $( RuleKind::$variant(k) => k.set_levels(level, clear), )*
                }
            }

            /// Fresh per-GPU memory ([`DetectorKind::memory`]).
            pub(crate) fn memory(&self) -> Memory {
                match self {
                    $( RuleKind::$variant(k) => Memory::$variant(k.memory()), )*
                }
            }

            /// Reads one sample ([`DetectorKind::evaluate`]).
            // Runs for every rule on every sample: inlined (with the kinds' `#[inline]`
            // `evaluate`) into the per-GPU loop, it costs what one hand-written match did
            // (measured: the same instruction count as before the kinds were split).
            #[inline(always)]
            pub(crate) fn evaluate(
                &self,
                memory: &mut Memory,
                s: &Sample,
                t: i64,
            ) -> Option<Observation> {
                match (self, memory) {
                    $( (RuleKind::$variant(k), Memory::$variant(m)) => k.evaluate(m, s, t), )*
                    // A memory that does not match its rule cannot happen (both come from
                    // the rule).
                    _ => None,
                }
            }

            /// A transition's message ([`DetectorKind::message`]).
            pub(crate) fn message(
                &self,
                state: AnomalyState,
                observation: &Observation,
                for_: Duration,
            ) -> String {
                match self {
                    $( RuleKind::$variant(k) => k.message(state, observation, for_), )*
                }
            }
        }

        impl RawRule {
            /// Reads the array of tables `key` of a rules file (a kind's [`DetectorKind::TABLE`])
            /// into `into`.
            pub(crate) fn read_tables<'de, A: MapAccess<'de>>(
                key: &'static str,
                map: &mut A,
                into: &mut Vec<RawRule>,
            ) -> Result<(), A::Error> {
                $(
                    if key == <$kind as DetectorKind>::TABLE {
                        let tables: Vec<<$kind as DetectorKind>::Table> = map.next_value()?;
                        into.extend(tables.into_iter().map(RawRule::$variant));
                        return Ok(());
                    }
                )*
                Err(de::Error::unknown_field(key, RuleKind::TABLES))
            }

            /// Position of the kind in [`RuleKind::TABLES`]: the order rules are checked and
            /// evaluated in.
            pub(crate) fn kind_index(&self) -> usize {
                let table = match self {
                    $( RawRule::$variant(_) => <$kind as DetectorKind>::TABLE, )*
                };
                RuleKind::TABLES.iter().position(|t| *t == table).unwrap_or(usize::MAX)
            }

            /// The rule, once its kind has checked its fields ([`DetectorKind::from_table`]).
            pub(crate) fn compile(self) -> Result<Rule, String> {
                match self {
                    $( RawRule::$variant(table) => {
                        let common = table.common();
                        let kind = <$kind as DetectorKind>::from_table(&common.name, table)?;
                        Ok(common.into_rule(RuleKind::$variant(kind)))
                    } )*
                }
            }
        }
    };
}

// The kinds, in evaluation order: a GPU's rules run kind by kind in this order (each in
// file order), which fixes the order of the transitions one sample causes. A new kind is
// its module (`pub mod` in `detect/mod.rs`) and one entry here, at the end.
detector_kinds! {
    /// `[[threshold]]`: a reading beyond a level.
    Threshold(super::threshold::Threshold),
    /// `[[rate_spike]]`: a fast rise inside one session.
    RateSpike(super::rate_spike::RateSpike),
    /// `[[deviation]]`: an EWMA z-score.
    Deviation(super::deviation::Deviation),
    /// `[[throttle]]`: throttling flags or falling clocks.
    Throttle(super::throttle::Throttle),
    /// `[[stuck]]`: a frozen sensor.
    Stuck(super::stuck::Stuck),
    /// `[[counter]]`: a growing error counter.
    Counter(super::counter::Counter),
    /// `[[code]]`: event codes (XID).
    Code(super::code::Code),
}

//! Local hour of day of UTC instants.

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;

use super::MICROS;

/// Local hour of day of UTC instants in one timezone, cached per UTC minute (offsets
/// change at most on minute boundaries).
#[derive(Debug)]
pub struct LocalHours {
    tz: Tz,
    minute: i64,
    /// Offset from UTC of the cached minute, seconds.
    offset_s: i64,
}

impl LocalHours {
    /// A converter for `tz`.
    pub fn new(tz: Tz) -> LocalHours {
        LocalHours {
            tz,
            minute: i64::MIN,
            offset_s: 0,
        }
    }

    /// Hour of day (0–23) in the timezone of the instant `t_us` (µs since the epoch).
    pub fn hour(&mut self, t_us: i64) -> usize {
        let minute = t_us.div_euclid(60 * MICROS);
        if minute != self.minute {
            self.minute = minute;
            self.offset_s = DateTime::<Utc>::from_timestamp_micros(t_us)
                .map(|t| {
                    use chrono::Offset;
                    t.with_timezone(&self.tz).offset().fix().local_minus_utc() as i64
                })
                .unwrap_or(0);
        }
        let local_s = t_us.div_euclid(MICROS) + self.offset_s;
        local_s.rem_euclid(86_400) as usize / 3600
    }

    /// The same without the cache (for tests and one-off uses).
    pub fn hour_of(tz: Tz, t: DateTime<Utc>) -> usize {
        t.with_timezone(&tz).hour() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_york_hours_across_the_spring_change() {
        let tz = chrono_tz::America::New_York;
        let mut h = LocalHours::new(tz);
        // 2024-03-10 06:30 UTC = 01:30 EST; 07:30 UTC = 03:30 EDT (02:xx does not exist).
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap().timestamp_micros();
        assert_eq!(h.hour(t("2024-03-10T06:30:00Z")), 1);
        assert_eq!(h.hour(t("2024-03-10T07:30:00Z")), 3);
        assert_eq!(h.hour(t("2024-03-10T04:59:59Z")), 23);
        let mut ist = LocalHours::new(chrono_tz::Asia::Kolkata);
        assert_eq!(ist.hour(t("2024-03-10T00:29:00Z")), 5);
        assert_eq!(ist.hour(t("2024-03-10T00:30:00Z")), 6);
    }
}

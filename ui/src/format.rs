//! How numbers read on the dashboard: money in euros with cents, energy in kWh, prices per kWh,
//! times in UTC. The domain's integer units in (the same types the server computes with), text
//! out; no floating point on money.

use gridshare_domain::{Micro, MicroPerKwh, W, Wh};

/// µ (micro-euros) as euros with cents, rounded half away from zero: `-1_234_567` → `−€1.23`.
pub fn money(micro: Micro) -> String {
    let micro = micro.0;
    let sign = if micro < 0 { "−" } else { "" };
    let cents = (micro.unsigned_abs() + 5_000) / 10_000;
    format!("{sign}€{}.{:02}", group(cents / 100), cents % 100)
}

/// µ/kWh as euros per kWh with three decimals: `123_400` → `€0.123/kWh`.
pub fn price(micro_per_kwh: MicroPerKwh) -> String {
    let micro_per_kwh = micro_per_kwh.0;
    let sign = if micro_per_kwh < 0 { "−" } else { "" };
    let mils = (micro_per_kwh.unsigned_abs() + 500) / 1_000;
    format!("{sign}€{}.{:03}/kWh", mils / 1_000, mils % 1_000)
}

/// µ/kWh as a plain number of euros per kWh for a form field, with three decimals or as many as
/// it needs: `80_000` → `0.080`, `95_500` → `0.0955`.
pub fn price_input(micro_per_kwh: MicroPerKwh) -> String {
    let v = micro_per_kwh.0;
    let sign = if v < 0 { "-" } else { "" };
    let abs = v.unsigned_abs();
    let frac = format!("{:06}", abs % 1_000_000);
    let frac = frac.trim_end_matches('0');
    let frac = format!("{frac:0<3}");
    format!("{sign}{}.{frac}", abs / 1_000_000)
}

/// Energy: Wh below 1 kWh, then kWh with one decimal below 100 kWh, none above: `830` →
/// `830 Wh`, `1_250` → `1.3 kWh`.
pub fn energy(wh: Wh) -> String {
    let wh = wh.0;
    let sign = if wh < 0 { "−" } else { "" };
    let abs = wh.unsigned_abs();
    if abs < 1_000 {
        format!("{sign}{abs} Wh")
    } else if abs >= 100_000 {
        format!("{sign}{} kWh", group((abs + 500) / 1_000))
    } else {
        let tenths = (abs + 50) / 100;
        format!("{sign}{}.{} kWh", tenths / 10, tenths % 10)
    }
}

/// Reward-token µ as tokens with two decimals: `1_234_567` → `1.23 GSR`.
pub fn tokens(micro: Micro) -> String {
    let micro = micro.0;
    let sign = if micro < 0 { "−" } else { "" };
    let cents = (micro.unsigned_abs() + 5_000) / 10_000;
    format!("{sign}{}.{:02} GSR", group(cents / 100), cents % 100)
}

/// W as kW with one decimal: `-2_345` → `−2.3 kW`.
pub fn power(w: W) -> String {
    let w = w.0;
    let sign = if w < 0 { "−" } else { "" };
    let tenths = (w.unsigned_abs() + 50) / 100;
    format!("{sign}{}.{} kW", tenths / 10, tenths % 10)
}

/// Thousands separated by a thin space: `1234567` → `1 234 567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// Milliseconds since 1970 (UTC) as `25 Nov 10:15`, by the civil-calendar arithmetic of
/// H. Hinnant's `civil_from_days` (kept off the date library, which would double the wasm).
pub fn when_ms(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let minute_of_day = ms.rem_euclid(86_400_000) / 60_000;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{day} {} {:02}:{:02}",
        MONTHS[(month - 1) as usize],
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// An RFC 3339 time or ISO interval (`2026-11-25T10:15:00Z/PT15M`) as `25 Nov 10:15`.
pub fn when(rfc3339: &str) -> String {
    let start = rfc3339.split('/').next().unwrap_or(rfc3339);
    let (date, time) = start.split_once('T').unwrap_or((start, ""));
    let mut parts = date.split('-');
    let (_, month, day) = (parts.next(), parts.next(), parts.next());
    let month = match month {
        Some("01") => "Jan",
        Some("02") => "Feb",
        Some("03") => "Mar",
        Some("04") => "Apr",
        Some("05") => "May",
        Some("06") => "Jun",
        Some("07") => "Jul",
        Some("08") => "Aug",
        Some("09") => "Sep",
        Some("10") => "Oct",
        Some("11") => "Nov",
        Some("12") => "Dec",
        _ => return start.to_owned(),
    };
    let day = day.map_or("", |d| d.trim_start_matches('0'));
    format!("{day} {month} {}", time.get(..5).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_ms_agree_with_the_domain_calendar() {
        use gridshare_domain::Timestamp;
        for ms in [
            0,
            1_764_064_800_000,
            1_709_164_800_000,
            4_102_444_799_999,
            951_782_400_000,
            -86_400_000,
        ] {
            assert_eq!(when_ms(ms), when(&Timestamp(ms).to_rfc3339()), "{ms}");
        }
        assert_eq!(when_ms(1_764_064_800_000), "25 Nov 10:00");
    }

    #[test]
    fn prices_for_a_form_field() {
        assert_eq!(price_input(MicroPerKwh(80_000)), "0.080");
        assert_eq!(price_input(MicroPerKwh(95_500)), "0.0955");
        assert_eq!(price_input(MicroPerKwh(1_250_000)), "1.250");
        assert_eq!(price_input(MicroPerKwh(-5)), "-0.000005");
        assert_eq!(price_input(MicroPerKwh(0)), "0.000");
    }

    #[test]
    fn money_prices_and_energy_read_as_people_write_them() {
        assert_eq!(money(Micro(0)), "€0.00");
        assert_eq!(money(Micro(1_234_567)), "€1.23");
        assert_eq!(money(Micro(-1_235_000)), "−€1.24", "half away from zero");
        assert_eq!(money(Micro(1_234_567_890_000)), "€1\u{202f}234\u{202f}567.89");
        assert_eq!(price(MicroPerKwh(123_400)), "€0.123/kWh");
        assert_eq!(price(MicroPerKwh(-50_000)), "−€0.050/kWh");
        assert_eq!(energy(Wh(1_250)), "1.3 kWh");
        assert_eq!(energy(Wh(49)), "49 Wh");
        assert_eq!(energy(Wh(999)), "999 Wh");
        assert_eq!(tokens(Micro(1_234_567)), "1.23 GSR");
        assert_eq!(energy(Wh(-12_340)), "−12.3 kWh");
        assert_eq!(energy(Wh(1_234_567)), "1\u{202f}235 kWh");
        assert_eq!(power(W(-2_345)), "−2.3 kW");
        assert_eq!(when("2026-11-25T10:15:00Z/PT15M"), "25 Nov 10:15");
        assert_eq!(when("2026-01-05T08:00:00.000Z"), "5 Jan 08:00");
        assert_eq!(when("not a time"), "not a time");
    }
}

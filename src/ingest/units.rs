//! Unit conversion: the one table of (metric, from unit, to unit) conversions the device profiles
//! may name, and the linear transform each resolves to.
//!
//! Profiles are checked against this table when they load (a conversion it does not know is a
//! config error), and each profile metric is precompiled into a [`Linear`] so decoding a value is
//! one multiply and one add. Unit names follow SenML (RFC 8428 §12.1) where SenML has one
//! (`Cel`, `%RH`, `dB`, `kPa`), plus `ug/m3`, `ppb`, `count` and `ratio` for what SenML lacks.

use thiserror::Error;

/// Molar volume of an ideal gas at 25 °C and 1 atm, in litres per mole. Air-quality standards
/// (WHO, EU, US EPA) quote µg/m³ ↔ ppb at these reference conditions.
pub const MOLAR_VOLUME_L_25C: f64 = 24.45;

/// Molecular weight of nitrogen dioxide (NO2), g/mol.
pub const MW_NO2_G_MOL: f64 = 46.0055;
/// Molecular weight of ozone (O3), g/mol.
pub const MW_O3_G_MOL: f64 = 47.9982;
/// Molecular weight of sulphur dioxide (SO2), g/mol.
pub const MW_SO2_G_MOL: f64 = 64.066;

/// µg/m³ per ppb of a gas of molecular weight `mw_g_mol` at 25 °C, 1 atm.
///
/// 1 ppb is 1e-9 mol of gas per mol of air; one mole of air fills 24.45 L, so a cubic metre holds
/// 1000/24.45 mol of air and 1000/24.45 × 1e-9 mol of the gas, i.e. MW × 1e-6/24.45 g =
/// MW/24.45 µg. NO2: 46.0055/24.45 ≈ 1.882; O3: 47.9982/24.45 ≈ 1.963.
pub const fn ppb_to_ug_m3_factor(mw_g_mol: f64) -> f64 {
    mw_g_mol / MOLAR_VOLUME_L_25C
}

/// A linear conversion `out = in × factor + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    /// Multiplier.
    pub factor: f64,
    /// Added after multiplying (only temperatures need one).
    pub offset: f64,
}

impl Linear {
    /// Leaves values unchanged.
    pub const IDENTITY: Linear = Linear {
        factor: 1.0,
        offset: 0.0,
    };

    /// Applies the conversion.
    #[inline]
    pub fn apply(&self, value: f64) -> f64 {
        value * self.factor + self.offset
    }

    /// First multiplies by `scale` (a field's fixed-point encoding, e.g. `kpa_x10` is ×0.1),
    /// then applies `self`.
    pub fn after_scale(self, scale: f64) -> Linear {
        Linear {
            factor: self.factor * scale,
            offset: self.offset,
        }
    }
}

/// Why a conversion cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UnitError {
    /// The unit is not in the table at all.
    #[error("unknown unit {0:?} (known: {known})", known = KNOWN_UNITS.join(", "))]
    UnknownUnit(String),
    /// Both units are known but no conversion between them exists for this metric.
    #[error("no conversion from {from:?} to {to:?} for metric {metric:?}")]
    NoConversion {
        /// Canonical metric name.
        metric: String,
        /// Source unit.
        from: String,
        /// Target unit.
        to: String,
    },
}

/// Every unit name the table knows.
pub const KNOWN_UNITS: &[&str] = &[
    "ug/m3", "mg/m3", "ppb", "ppm", "dB", "Cel", "K", "%RH", "mm/h", "kPa", "Pa", "hPa", "bar",
    "mV", "V", "km/h", "m/s", "%", "count", "ratio",
];

/// Metric wildcard in [`CONVERSIONS`]: the conversion holds for any metric.
const ANY_METRIC: &str = "*";

/// One table row.
struct Conversion {
    /// Metric the row applies to, or [`ANY_METRIC`] for physical-unit conversions.
    metric: &'static str,
    from: &'static str,
    to: &'static str,
    linear: Linear,
}

const fn row(
    metric: &'static str,
    from: &'static str,
    to: &'static str,
    factor: f64,
) -> Conversion {
    Conversion {
        metric,
        from,
        to,
        linear: Linear {
            factor,
            offset: 0.0,
        },
    }
}

/// The conversion table. Gas mixing ratios → mass concentration depend on the gas, so those rows
/// are keyed by metric; everything else is a plain unit change valid for any metric.
const CONVERSIONS: &[Conversion] = &[
    row("no2", "ppb", "ug/m3", ppb_to_ug_m3_factor(MW_NO2_G_MOL)),
    row(
        "no2",
        "ppm",
        "ug/m3",
        1000.0 * ppb_to_ug_m3_factor(MW_NO2_G_MOL),
    ),
    row("o3", "ppb", "ug/m3", ppb_to_ug_m3_factor(MW_O3_G_MOL)),
    row(
        "o3",
        "ppm",
        "ug/m3",
        1000.0 * ppb_to_ug_m3_factor(MW_O3_G_MOL),
    ),
    row("so2", "ppb", "ug/m3", ppb_to_ug_m3_factor(MW_SO2_G_MOL)),
    row(ANY_METRIC, "mg/m3", "ug/m3", 1000.0),
    row(ANY_METRIC, "ppm", "ppb", 1000.0),
    row(ANY_METRIC, "Pa", "kPa", 0.001),
    row(ANY_METRIC, "hPa", "kPa", 0.1),
    row(ANY_METRIC, "bar", "kPa", 100.0),
    row(ANY_METRIC, "V", "mV", 1000.0),
    row(ANY_METRIC, "m/s", "km/h", 3.6),
    row(ANY_METRIC, "ratio", "%", 100.0),
    Conversion {
        metric: ANY_METRIC,
        from: "K",
        to: "Cel",
        linear: Linear {
            factor: 1.0,
            offset: -273.15,
        },
    },
];

/// Whether `unit` is a unit name the table knows.
pub fn is_known_unit(unit: &str) -> bool {
    KNOWN_UNITS.contains(&unit)
}

/// The conversion of `metric` values from unit `from` to unit `to`.
///
/// Same unit → identity. A metric-specific row wins over a generic one.
pub fn conversion(metric: &str, from: &str, to: &str) -> Result<Linear, UnitError> {
    for unit in [from, to] {
        if !is_known_unit(unit) {
            return Err(UnitError::UnknownUnit(unit.to_string()));
        }
    }
    if from == to {
        return Ok(Linear::IDENTITY);
    }
    let specific = CONVERSIONS
        .iter()
        .find(|c| c.metric == metric && c.from == from && c.to == to);
    let generic = || {
        CONVERSIONS
            .iter()
            .find(|c| c.metric == ANY_METRIC && c.from == from && c.to == to)
    };
    specific
        .or_else(generic)
        .map(|c| c.linear)
        .ok_or_else(|| UnitError::NoConversion {
            metric: metric.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn gas_factors_match_the_reference_values() {
        let no2 = conversion("no2", "ppb", "ug/m3").expect("no2 known");
        let o3 = conversion("o3", "ppb", "ug/m3").expect("o3 known");
        assert!((no2.factor - 1.882).abs() < 1e-3, "{}", no2.factor);
        assert!((o3.factor - 1.963).abs() < 1e-3, "{}", o3.factor);
        assert!((no2.apply(21.0) - 39.51).abs() < 0.02);
    }

    #[test]
    fn gas_conversion_is_per_metric() {
        // ppb → µg/m³ needs a molecular weight: a metric the table has none for must fail.
        let err = conversion("pm2_5", "ppb", "ug/m3").expect_err("no molecular weight");
        assert!(matches!(err, UnitError::NoConversion { .. }), "{err}");
    }

    #[test]
    fn identity_generic_and_offset_conversions() {
        assert_eq!(conversion("x", "kPa", "kPa"), Ok(Linear::IDENTITY));
        assert!(close(
            conversion("p", "Pa", "kPa")
                .expect("known")
                .apply(412_300.0),
            412.3
        ));
        assert!(close(
            conversion("t", "K", "Cel").expect("known").apply(273.15),
            0.0
        ));
        assert!(close(
            conversion("s", "m/s", "km/h").expect("known").apply(10.0),
            36.0
        ));
    }

    #[test]
    fn unknown_units_and_missing_rows_are_errors() {
        assert_eq!(
            conversion("x", "furlongs", "kPa"),
            Err(UnitError::UnknownUnit("furlongs".to_string()))
        );
        assert!(conversion("x", "kPa", "mV").is_err());
        // Conversions are one-way: the table says which direction the profiles may use.
        assert!(conversion("x", "kPa", "Pa").is_err());
    }

    #[test]
    fn scale_applies_before_conversion() {
        let l = conversion("p", "kPa", "kPa")
            .expect("known")
            .after_scale(0.1);
        assert!(close(l.apply(4123.0), 412.3));
        let k = Linear {
            factor: 1.0,
            offset: -273.15,
        }
        .after_scale(0.1);
        assert!(close(k.apply(2931.5), 20.0));
    }
}

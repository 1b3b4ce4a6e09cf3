//! Tests of register loading: the contract rows, bad rows with file/line/column, headers.

use super::*;

const DEVICES: &str = "device_id,profile,lat,lon,department,district
TC-0042,traffic-camera,30.2741,120.1551,traffic,Xihu
AQ-0107,air-senml,30.2803,120.1620,environment,Xihu
AQ-2201,air-vendor-b,30.2590,120.2110,environment,Shangcheng
PG-0311,pressure-logger,30.2745,120.1548,water,Xihu
";
const CREWS: &str = "crew_id,department,home_lat,home_lon,skills
W-07,water,30.2700,120.1500,valve;excavation
T-03,traffic,30.2800,120.1600,traffic_control
";

fn shipped_profiles() -> ProfileSet {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("device-profiles");
    ProfileSet::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"))
}

fn load(devices: &str, crews: &str) -> Result<Registry, ConfigErrors> {
    Registry::from_csv_str(
        "devices.csv",
        devices,
        "crews.csv",
        crews,
        Some(&shipped_profiles()),
    )
}

#[test]
fn contract_registers_load() {
    let reg = load(DEVICES, CREWS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reg.devices.len(), 4);
    let pg = reg.device("PG-0311").expect("registered");
    assert_eq!(
        (
            pg.profile.as_str(),
            pg.department.as_str(),
            pg.district.as_str()
        ),
        ("pressure-logger", "water", "Xihu")
    );
    assert_eq!(
        pg.location,
        Location {
            lat: 30.2745,
            lon: 120.1548
        }
    );
    let w = reg.crew("W-07").expect("registered");
    assert_eq!(w.skills, vec!["valve", "excavation"]);
    assert_eq!(
        w.home,
        Location {
            lat: 30.27,
            lon: 120.15
        }
    );
    assert!(reg.device("nope").is_none() && reg.crew("nope").is_none());
}

#[test]
fn bad_rows_report_file_line_and_column() {
    let devices = format!(
        "{DEVICES}XX-1,traffic-camera,north,120.1,traffic,Xihu\nXX-2,traffic-camera,91,120.1,traffic,Xihu\n\
         XX-3,traffic-camera,30,-181,traffic,Xihu\n,traffic-camera,30,120,traffic,Xihu\n\
         TC-0042,traffic-camera,30,120,traffic,Xihu\nXX-4,toaster,30,120,traffic,Xihu\nXX-5,traffic-camera,30\n"
    );
    let crews = format!("{CREWS}W-07,water,30,120,valve\nW-09,,30,120,\n");
    let errs = load(&devices, &crews).expect_err("bad rows").0;
    let got: Vec<(&str, Option<usize>, &str)> = errs
        .iter()
        .map(|e| (e.file.as_str(), e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("devices.csv", Some(6), "lat"),
            ("devices.csv", Some(7), "lat"),
            ("devices.csv", Some(8), "lon"),
            ("devices.csv", Some(9), "device_id"),
            ("devices.csv", Some(10), "device_id"),
            ("devices.csv", Some(11), "profile"),
            ("devices.csv", Some(12), ""),
            ("crews.csv", Some(4), "crew_id"),
            ("crews.csv", Some(5), "department"),
        ],
        "{errs:#?}"
    );
    assert!(errs[0].message.contains("north"));
    assert!(errs[4].message.contains("line 2"), "{}", errs[4]);
    assert!(errs[5].message.contains("toaster"));
}

#[test]
fn wrong_or_missing_header_is_reported() {
    let errs = load(
        "id,profile,lat,lon,department,district\nA,traffic-camera,1,2,x,y\n",
        CREWS,
    )
    .expect_err("wrong header")
    .0;
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].line, errs[0].field.as_str()), (Some(1), "header"));
    let errs = load(DEVICES, "").expect_err("empty").0;
    assert_eq!(
        (errs[0].file.as_str(), errs[0].field.as_str()),
        ("crews.csv", "header")
    );
}

#[test]
fn bom_blank_lines_and_spaces_are_tolerated_and_profiles_optional() {
    let devices = "\u{feff}device_id,profile,lat,lon,department,district\n\n A-1 , anything , 1.5 , 2.5 , water , \n";
    let reg =
        Registry::from_csv_str("d", devices, "c", CREWS, None).unwrap_or_else(|e| panic!("{e}"));
    let a = reg.device("A-1").expect("trimmed id");
    assert_eq!(
        (a.profile.as_str(), a.location.lat, a.district.as_str()),
        ("anything", 1.5, "")
    );
}

#[test]
fn load_reads_files_and_reports_missing_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (d, c) = (dir.path().join("devices.csv"), dir.path().join("crews.csv"));
    std::fs::write(&d, DEVICES).expect("write");
    let errs = Registry::load(&d, &c, None).expect_err("no crews file").0;
    assert!(errs[0].file.ends_with("crews.csv") && errs[0].message.contains("cannot read"));
    std::fs::write(&c, CREWS).expect("write");
    let reg = Registry::load(&d, &c, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((reg.devices.len(), reg.crews.len()), (4, 2));
    let again = Registry::from_parts(
        reg.devices.values().cloned().collect(),
        reg.crews.values().cloned().collect(),
    );
    assert_eq!(again, reg);
}

//! Hot reload while live: editing a pipeline file swaps it in without a restart; an invalid file
//! is rejected with its file, line and field, and the running definitions stay.

mod common;

use std::time::{Duration, Instant};

use citybrain::sim::{InjectedKind, NoiseOptions, SimOptions};
use common::*;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
    }
}

async fn post(url: String, token: &str) -> (u16, String) {
    let token = token.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut resp = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .send_empty()
            .expect("http request");
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    })
    .await
    .expect("http thread")
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_pipelines_reloads_them_and_a_bad_edit_keeps_the_old_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = SimOptions::default_with_seed(41, minutes_ago(70), 60 * 60);
    opts.incidents = vec![InjectedKind::PollutionEpisode];
    opts.noise = NoiseOptions::none();
    simulate(dir.path(), &opts);
    let pipelines = dir.path().join("pipelines");
    let profiles = dir.path().join("device-profiles");
    copy_dir(&repo().join("pipelines"), &pipelines);
    copy_dir(&repo().join("device-profiles"), &profiles);

    let broker = mosquitto();
    let defs = defs(dir.path());
    let registry = defs.registry.clone();
    let rig = start_live(&broker, defs);
    let source = rig
        .live
        .watch_definitions(pipelines.clone(), profiles.clone(), registry);
    assert_eq!(rig.live.reloader.current().number, 0);

    // A broken edit: rejected, reported with file, line and field; version 0 keeps running.
    let file = pipelines.join("pollution_episode.yaml");
    let good = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, good.replace("radius_m: 6000", "radius_m: -1")).expect("write");
    wait_for("the rejection", || source.status().rejected == 1).await;
    let status = source.status();
    assert!(
        status
            .last_errors
            .iter()
            .any(|e| e.contains("pollution_episode.yaml:") && e.contains("incident.radius_m")),
        "{status:?}"
    );
    assert_eq!(
        rig.live.reloader.current().number,
        0,
        "the old definitions stay"
    );

    // A valid edit: the pollution rule now needs three stations.
    std::fs::write(&file, good.replace("min_devices: 2", "min_devices: 3")).expect("write");
    wait_for("the reload", || rig.live.reloader.current().number == 1).await;
    let current = rig.live.reloader.current();
    let rule = current.pipelines.rule("pollution_episode").expect("rule");
    assert_eq!(rule.trigger[0].all[0].min_devices, 3);
    assert!(source.status().last_errors.is_empty());

    // The same through the API (engineer role): a bad file gives 422 with file and field, the
    // version stays; a good one reloads.
    std::fs::write(&file, good.replace("window_secs: 3600", "window_secs: 0")).expect("write");
    let (code, body) = post(rig.url("/api/v1/pipelines/reload"), &rig.token).await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("pollution_episode.yaml:") && body.contains("incident.window_secs"),
        "{body}"
    );
    std::fs::write(&file, good.replace("min_devices: 2", "min_devices: 3")).expect("write");
    let (code, body) = post(rig.url("/api/v1/pipelines/reload"), &rig.token).await;
    assert_eq!(code, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(view["version"].as_u64().is_some_and(|v| v >= 2), "{view}");
    assert!(view["kinds"]
        .as_array()
        .is_some_and(|k| k.iter().any(|x| x == "pollution_episode")));
    let (code, body) = get(rig.url("/api/v1/pipelines"), Some(rig.token.clone())).await;
    assert_eq!(code, 200, "{body}");

    // The pipeline keeps working with the new definitions: publish the city; the sim's episode
    // has at most three stations, so with min_devices 3 only a three-station episode opens.
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("truth.json")).expect("truth"),
    )
    .expect("json");
    let stations = truth["incidents"][0]["devices"]
        .as_array()
        .map_or(0, Vec::len);
    let publisher = citybrain::ingest::publish::Publisher::connect(&rig.mqtt, "devices")
        .await
        .expect("publisher");
    rig.wait_subscribed(&publisher).await;
    let probes = rig
        .live
        .source_stats
        .messages
        .load(std::sync::atomic::Ordering::Relaxed);
    let messages = read_recording(&dir.path().join("recording.ndjson"));
    publish_in_order(&publisher, &messages).await;
    rig.wait_received(messages.len() as u64 + probes).await;
    let done = rig.live.stop().await.expect("stops");
    let episodes = done
        .store
        .all()
        .into_iter()
        .filter(|i| i.kind == "pollution_episode")
        .count();
    assert_eq!(
        episodes,
        usize::from(stations >= 3),
        "{stations} stations in the episode"
    );
}

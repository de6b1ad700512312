use std::path::Path;

/// The committed spec is what the code generates. `UPDATE_OPENAPI=1 cargo test -p pluto-duck-tests openapi`
/// rewrites it.
#[test]
fn openapi_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let generated = pluto_duck_http::openapi().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p pluto-duck-tests openapi"
    );
}

#[test]
fn spec_is_openapi_3_1_and_documents_problems() {
    let spec: serde_json::Value = serde_json::from_str(&pluto_duck_http::openapi().to_json().unwrap()).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(spec["paths"]["/health"]["get"].is_object());
    let projects = &spec["paths"]["/api/v1/projects/{project_id}"]["get"]["responses"];
    assert!(
        projects["404"]["content"]["application/problem+json"].is_object(),
        "{projects}"
    );
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
}

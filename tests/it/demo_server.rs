//! The throwaway PostgreSQL of `recalcd demo`, started from the machine's programs.

use recalcd::demo::TempServer;

#[tokio::test]
async fn throwaway_server_starts_answers_and_is_removed() {
    let server = TempServer::start().expect("the machine has PostgreSQL installed");
    let dir = server.dir().to_owned();
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the throwaway server");
    let conn = tokio::spawn(connection);
    let row = client.query_one("SELECT 40 + 2", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(client);
    let _ = conn.await;
    let url = server.url();
    drop(server);
    assert!(!dir.exists(), "{} was not removed", dir.display());
    assert!(
        tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .is_err(),
        "the server still answers after drop"
    );
}

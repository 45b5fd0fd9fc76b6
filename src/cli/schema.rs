use super::Failure;
use crate::ui;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_: Args) -> Result<(), Failure> {
    let schema = crate::model::load::schema();
    ui::stdout(&serde_json::to_string_pretty(schema).map_err(|e| Failure::Other(e.into()))?);
    Ok(())
}

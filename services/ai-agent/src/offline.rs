//! The offline answerer: deterministic Spanish answers built from the same data the model's tools
//! fetch, for when no LLM is configured. It never invents a figure: every number it says comes
//! from a lookup, and a destination it does not know gets the contract's "no information" answer.
//!
//! Chat: the destination is recognised in the question (any case, with or without accents), the
//! intent from keywords (taxes, price, promotion, pets, demand, flights); several intents are
//! answered together, none gives the destination's summary.
//!
//! Price suggestions follow fixed rules tied to demand and promotion:
//!
//! | demand | on promotion | suggestion |
//! |---|---|---|
//! | alta | no | raise the base price 10% |
//! | alta | yes | end the promotion (the 10% discount is no longer needed) |
//! | baja | no | start a 10% promotion |
//! | baja | yes | lower the base price 5% on top of the promotion |
//! | estable | either | keep the current price |

use rust_decimal::{Decimal, RoundingStrategy};

use crate::data::{DataError, Market, Sources, not_found_text};
use crate::demand::{Prediction, Trend};
use crate::llm::{DemandPrediction, DemandStatistics, MarketData, SearchFlights};
use rig_agent::tool::Tool as _;

/// What the question asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Taxes,
    Price,
    Promotion,
    Pets,
    Demand,
    Flights,
}

const KEYWORDS: &[(Intent, &[&str])] = &[
    (Intent::Taxes, &["impuesto", "tasa", "tax"]),
    (
        Intent::Price,
        &[
            "precio", "cuesta", "cuestan", "costo", "tarifa", "valor", "vale", "barato", "caro",
        ],
    ),
    (
        Intent::Promotion,
        &["promocion", "oferta", "descuento", "rebaja"],
    ),
    (Intent::Pets, &["mascota", "perro", "gato", "animal"]),
    (
        Intent::Demand,
        &["demanda", "reserva", "popular", "vendid", "ocupacion"],
    ),
    (Intent::Flights, &["vuelo", "horario", "asiento", "salida"]),
];

/// Lower case, accents removed, punctuation as spaces: "¿Cuánto?" → " cuanto ".
#[must_use]
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'á' | 'à' | 'ä' | 'â' => 'a',
            'é' | 'è' | 'ë' | 'ê' => 'e',
            'í' | 'ì' | 'ï' | 'î' => 'i',
            'ó' | 'ò' | 'ö' | 'ô' => 'o',
            'ú' | 'ù' | 'ü' | 'û' => 'u',
            'ñ' => 'n',
            c if c.is_alphanumeric() => c,
            _ => ' ',
        })
        .collect();
    format!(
        " {} ",
        folded.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

/// The known destination the question names (the longest match wins).
#[must_use]
pub fn find_destination<'a>(question: &str, names: &'a [String]) -> Option<&'a str> {
    let question = normalize(question);
    names
        .iter()
        .filter(|name| {
            let name = normalize(name);
            name.trim().len() > 1 && question.contains(&name)
        })
        .max_by_key(|name| name.len())
        .map(String::as_str)
}

/// A name the question seems to be about (the last run of capitalised words after the first
/// word, joined by "de", "del", "la"…), for saying we know nothing about it:
/// "¿… viajar a Atlantis?" → "Atlantis".
#[must_use]
pub fn candidate_name(question: &str) -> Option<String> {
    const CONNECTORS: &[&str] = &["de", "del", "la", "las", "los", "el", "y"];
    let words: Vec<&str> = question
        .split(char::is_whitespace)
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .collect();
    let mut best: Option<Vec<&str>> = None;
    let mut run: Vec<&str> = Vec::new();
    let mut pending: Vec<&str> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 && word.chars().next().is_some_and(char::is_uppercase) {
            run.append(&mut pending);
            run.push(word);
        } else if !run.is_empty() && CONNECTORS.contains(word) {
            pending.push(word);
        } else {
            if !run.is_empty() {
                best = Some(std::mem::take(&mut run));
            }
            pending.clear();
        }
    }
    if !run.is_empty() {
        best = Some(run);
    }
    best.map(|words| words.join(" "))
}

fn intents(question: &str) -> Vec<Intent> {
    let question = normalize(question);
    KEYWORDS
        .iter()
        .filter(|(_, words)| words.iter().any(|w| question.contains(&format!(" {w}"))))
        .map(|(intent, _)| *intent)
        .collect()
}

fn money(text: &str) -> String {
    text.parse::<Decimal>()
        .map_or_else(|_| text.to_owned(), |d| format!("{:.2}", d.round_dp(2)))
}

/// Receives a chat answer as it is written: each sentence as soon as its lookups are done, and
/// the model tools whose data each lookup is (so a streamed answer can say which it consulted).
pub trait Recorder: Send {
    /// The next sentence (or paragraph) of the answer.
    fn sentence(&mut self, text: String);
    /// A lookup was made with the data of this model tool.
    fn consulted(&mut self, tool: &'static str);
}

/// Collects a whole answer: the sentences joined by spaces.
#[derive(Debug, Default)]
pub struct Collected {
    pub sentences: Vec<String>,
    pub tools: Vec<&'static str>,
}

impl Recorder for Collected {
    fn sentence(&mut self, text: String) {
        self.sentences.push(text);
    }

    fn consulted(&mut self, tool: &'static str) {
        if !self.tools.contains(&tool) {
            self.tools.push(tool);
        }
    }
}

/// Answers a chat question.
pub async fn chat(sources: &Sources, question: &str) -> Result<String, DataError> {
    let mut answer = Collected::default();
    chat_into(sources, question, &mut answer).await?;
    Ok(answer.sentences.join(" "))
}

/// Answers a chat question sentence by sentence into `out` (what [`chat`] joins).
pub async fn chat_into(
    sources: &Sources,
    question: &str,
    out: &mut dyn Recorder,
) -> Result<(), DataError> {
    let names = sources.destination_names().await?;
    let Some(destination) = find_destination(question, &names) else {
        match candidate_name(question) {
            Some(name) => out.sentence(not_found_text(&name)),
            None => {
                out.consulted(DemandStatistics::NAME);
                out.sentence(general_answer(sources).await?);
            }
        }
        return Ok(());
    };
    out.consulted(MarketData::NAME);
    let Some(market) = sources.market(destination).await? else {
        out.sentence(not_found_text(destination));
        return Ok(());
    };
    let mut intents = intents(question);
    if intents.is_empty() {
        intents = vec![
            Intent::Taxes,
            Intent::Price,
            Intent::Promotion,
            Intent::Pets,
        ];
    }
    for intent in intents {
        match intent {
            Intent::Demand => out.consulted(DemandPrediction::NAME),
            Intent::Flights => out.consulted(SearchFlights::NAME),
            _ => {}
        }
        out.sentence(intent_sentence(sources, &market, intent).await?);
    }
    Ok(())
}

/// The sentence answering one `intent` about `market`'s destination (looking up what it needs).
async fn intent_sentence(
    sources: &Sources,
    market: &Market,
    intent: Intent,
) -> Result<String, DataError> {
    Ok(match intent {
        Intent::Taxes => format!(
            "Los impuestos para viajar a {} son de {} por reserva.",
            market.destination,
            money(&market.tax_amount)
        ),
        Intent::Price => price_sentence(market),
        Intent::Promotion => {
            if market.is_promotion {
                format!(
                    "{} está en promoción: 10% de descuento sobre el precio base.",
                    market.destination
                )
            } else {
                format!("{} no tiene promoción en este momento.", market.destination)
            }
        }
        Intent::Pets => {
            if market.allows_pets {
                format!("Se permite viajar con mascotas a {}.", market.destination)
            } else {
                format!("{} no acepta mascotas.", market.destination)
            }
        }
        Intent::Demand => match sources.prediction(&market.destination).await? {
            Some(prediction) => demand_sentence(&prediction),
            None => not_found_text(&market.destination),
        },
        Intent::Flights => {
            let flights = sources.search("", &market.destination).await?;
            if flights.is_empty() {
                format!("No hay vuelos programados a {}.", market.destination)
            } else {
                let list: Vec<String> = flights
                    .iter()
                    .map(|f| {
                        format!(
                            "{} desde {} ({}, {} asientos libres)",
                            f.flight_number,
                            f.origin,
                            money(&f.base_price),
                            f.seats_available
                        )
                    })
                    .collect();
                format!("Vuelos a {}: {}.", market.destination, list.join("; "))
            }
        }
    })
}

fn price_sentence(market: &Market) -> String {
    match &market.average_base_price {
        None => format!(
            "No hay vuelos a {} con precio publicado.",
            market.destination
        ),
        Some(average) => {
            let mut sentence = format!(
                "El precio base promedio de los {} vuelos a {} es {}",
                market.flight_count,
                market.destination,
                money(average)
            );
            if let Ok(average) = average.parse::<Decimal>() {
                let tax = market.tax_amount.parse::<Decimal>().unwrap_or_default();
                let fare = if market.is_promotion {
                    average * Decimal::new(90, 2)
                } else {
                    average
                };
                let total =
                    (fare + tax).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
                sentence.push_str(&format!(
                    "; con impuestos{} una reserva cuesta {total:.2}",
                    if market.is_promotion {
                        " y la promoción"
                    } else {
                        ""
                    }
                ));
            }
            sentence.push('.');
            sentence
        }
    }
}

fn demand_sentence(p: &Prediction) -> String {
    format!(
        "{} Reservas de {}: {} de {} en total ({}% del mercado; promedio por destino {}). Proyección: {} reservas.",
        p.recommendation,
        p.destination,
        p.current,
        p.total,
        p.market_share,
        p.average,
        p.projection
    )
}

/// An overview when the question names no destination.
async fn general_answer(sources: &Sources) -> Result<String, DataError> {
    let demand = sources.demand().await?;
    let top: Vec<String> = demand
        .bookings_by_destination
        .iter()
        .take(3)
        .map(|(name, n)| format!("{name} ({n} reservas)"))
        .collect();
    Ok(if top.is_empty() {
        "Aún no hay reservas registradas. Pregúnteme por un destino: impuestos, precios, promociones, mascotas o demanda.".to_owned()
    } else {
        format!(
            "Destinos más reservados: {}. Ingresos totales: {}. Pregúnteme por un destino para más detalle.",
            top.join(", "),
            money(&demand.total_revenue)
        )
    })
}

/// A price suggestion for a destination (rules in the module docs).
pub async fn suggest_price(sources: &Sources, destination: &str) -> Result<String, DataError> {
    let Some(market) = sources.market(destination).await? else {
        return Ok(not_found_text(destination.trim()));
    };
    let Some(prediction) = sources.prediction(&market.destination).await? else {
        return Ok(not_found_text(destination.trim()));
    };
    let Some(average) = market
        .average_base_price
        .as_deref()
        .and_then(|a| a.parse::<Decimal>().ok())
    else {
        return Ok(format!(
            "{} no tiene vuelos con precio publicado: no hay base para sugerir un precio.",
            market.destination
        ));
    };
    let round = |d: Decimal| d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    let advice = match (prediction.trend, market.is_promotion) {
        (Trend::Alta, false) => format!(
            "subir el precio base un 10%, a {:.2}",
            round(average * Decimal::new(110, 2))
        ),
        (Trend::Alta, true) => format!(
            "terminar la promoción: con demanda alta el descuento del 10% ya no hace falta (precio efectivo de {:.2} a {:.2})",
            round(average * Decimal::new(90, 2)),
            round(average)
        ),
        (Trend::Baja, false) => format!(
            "activar una promoción del 10% (precio efectivo {:.2})",
            round(average * Decimal::new(90, 2))
        ),
        (Trend::Baja, true) => format!(
            "bajar el precio base un 5%, a {:.2}, además de la promoción",
            round(average * Decimal::new(95, 2))
        ),
        (Trend::Estable, _) => format!("mantener el precio base en {average:.2}"),
    };
    Ok(format!(
        "Sugerencia para {}: {}. Datos: precio base promedio {:.2} en {} vuelos, impuesto {}, {}; demanda {} ({} reservas, {}% del mercado, promedio por destino {}).",
        market.destination,
        advice,
        average,
        market.flight_count,
        money(&market.tax_amount),
        if market.is_promotion {
            "en promoción"
        } else {
            "sin promoción"
        },
        prediction.trend.word(),
        prediction.current,
        prediction.market_share,
        prediction.average
    ))
}

/// The demand prediction for a destination, in words.
pub async fn predict_demand(sources: &Sources, destination: &str) -> Result<String, DataError> {
    Ok(match sources.prediction(destination).await? {
        Some(prediction) => demand_sentence(&prediction),
        None => not_found_text(destination.trim()),
    })
}

#[cfg(test)]
mod tests;

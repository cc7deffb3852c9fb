//! Property: whatever a generated builder builds passes the schema's own validation
//! (`replicate_protocol::schema::InputSchema::validate_strict`, which also refuses unknown
//! fields), and the builder refuses exactly the values that validation refuses.
//!
//! Each case draws a value for every input, in range or (for the second kind of case) from a
//! wider range, builds with the builder, sets the same values on an input directly (its fields
//! are public) and compares the builder's verdict with the schema's. The modules covered hold
//! every kind of check: inclusive and exclusive bounds on integers and numbers, integer and
//! number enums, list items, enums, files, secrets, defaults, and a trainer's input.

// The strategies use the schemas' bounds as literals: `3.14` in `cog-range.json` is a bound,
// not an approximation of π.
#![allow(clippy::approx_constant)]

use std::fmt::Debug;

use proptest::prelude::*;
use proptest::sample::select;
use replicate_protocol::schema::InputSchema;
use replicate_typed_tests::*;
use serde::Serialize;
use serde_json::Value;

/// The `Input` (or `TrainingInput`) schema of a file of the workspace.
fn schema(path: &str, training: bool) -> InputSchema {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    let mut doc: Value =
        serde_json::from_slice(&std::fs::read(&file).expect("schema file")).expect("JSON");
    if let Some(inner) = doc.pointer("/latest_version/openapi_schema") {
        doc = inner.clone();
    }
    let parsed = if training {
        InputSchema::training_from_openapi(&doc)
    } else {
        InputSchema::from_openapi(&doc)
    };
    parsed.expect("an input schema")
}

/// The builder's result `built` agrees with the schema on `input` (the same values, set
/// directly): both accept (and the builder built exactly `input`), or both refuse (and the
/// builder names a field the schema has a problem with).
fn agrees<T, E>(schema: &InputSchema, built: Result<T, E>, input: &T) -> Result<(), TestCaseError>
where
    T: Serialize + PartialEq + Debug,
    E: std::fmt::Display + Debug,
{
    let json = serde_json::to_value(input).expect("input JSON");
    match (built, schema.validate_strict(&json)) {
        (Ok(built), Ok(())) => prop_assert_eq!(&built, input),
        (Err(err), Err(problems)) => {
            let err = err.to_string();
            prop_assert!(
                problems
                    .iter()
                    .any(|p| err.starts_with(&format!("{}:", p.field))
                        || err.starts_with(&format!("{}[", p.field))),
                "builder: {err}; schema: {problems}"
            );
        }
        (built, verdict) => {
            prop_assert!(false, "builder {built:?}, schema {verdict:?}, for {json}");
        }
    }
    Ok(())
}

/// Values around `[min, max]`: in range half of the time, up to `slack` outside otherwise.
fn around_i(min: i64, max: i64, slack: i64) -> BoxedStrategy<i64> {
    prop_oneof![min..=max, (min - slack)..=(max + slack)].boxed()
}

fn around_f(min: f64, max: f64, slack: f64) -> BoxedStrategy<f64> {
    prop_oneof![min..=max, (min - slack)..=(max + slack)].boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cog_range(
        ints in (around_i(0, 100, 5), around_i(-100, 10, 5), around_i(0, 10, 5), around_i(0, 10, 5)),
        floats in (
            around_f(2.71, 10.0, 1.0),
            around_f(-10.0, 3.14, 1.0),
            around_f(2.71, 3.14, 0.5),
            around_f(2.71, 3.14, 0.5),
        ),
        more in (around_f(0.0, 10.0, 1.0), around_f(-10.0, 10.0, 1.0), around_f(0.0, 10.0, 1.0), around_f(0.0, 10.0, 1.0)),
    ) {
        use cog_range::Input;
        let schema = schema("fixtures/schemas/cog-range.json", false);
        let (int_ge, int_le, int_ge_le, int_ge_le_wd) = ints;
        let (float_ge, float_le, float_ge_le, float_ge_le_wd) = floats;
        let (float_ge_i, float_le_i, float_ge_le_i, float_ge_le_i_wd) = more;
        let built = Input::builder(
            int_ge, int_le, int_ge_le, float_ge, float_le, float_ge_le, float_ge_i, float_le_i,
            float_ge_le_i,
        )
        .int_ge_le_wd(int_ge_le_wd)
        .float_ge_le_wd(float_ge_le_wd)
        .float_ge_le_i_wd(float_ge_le_i_wd)
        .build();
        let mut direct = Input::builder(0, 0, 0, 3.0, 3.0, 3.0, 0.0, 0.0, 0.0)
            .build()
            .expect("a valid input");
        direct.int_ge = int_ge;
        direct.int_le = int_le;
        direct.int_ge_le = int_ge_le;
        direct.int_ge_le_wd = int_ge_le_wd;
        direct.float_ge = float_ge;
        direct.float_le = float_le;
        direct.float_ge_le = float_ge_le;
        direct.float_ge_le_wd = float_ge_le_wd;
        direct.float_ge_i = float_ge_i;
        direct.float_le_i = float_le_i;
        direct.float_ge_le_i = float_ge_le_i;
        direct.float_ge_le_i_wd = float_ge_le_i_wd;
        agrees(&schema, built, &direct)?;
    }

    #[test]
    fn cog_range_in_range_always_builds(
        int_ge in 0i64..1000, int_le in -1000i64..=10, int_ge_le in 0i64..=10,
        float_ge in 2.71f64..100.0, float_le in -100.0f64..=3.14, float_ge_le in 2.71f64..=3.14,
        float_ge_i in 0.0f64..100.0, float_le_i in -100.0f64..=10.0, float_ge_le_i in 0.0f64..=10.0,
    ) {
        let schema = schema("fixtures/schemas/cog-range.json", false);
        let input = cog_range::Input::builder(
            int_ge, int_le, int_ge_le, float_ge, float_le, float_ge_le, float_ge_i, float_le_i,
            float_ge_le_i,
        )
        .build();
        prop_assert!(input.is_ok(), "{input:?}");
        let json = serde_json::to_value(input.expect("built")).expect("JSON");
        prop_assert!(schema.validate_strict(&json).is_ok(), "{json}");
    }

    #[test]
    fn synthetic_flux_schnell(
        prompt in ".{0,20}",
        aspect_ratio in select(synthetic_flux_schnell::AspectRatio::ALL),
        output_format in select(synthetic_flux_schnell::OutputFormat::ALL),
        megapixels in select(synthetic_flux_schnell::Megapixels::ALL),
        counts in (around_i(1, 4, 3), around_i(1, 4, 3), around_i(0, 100, 10)),
        seed in proptest::option::of(any::<i64>()),
        flags in (any::<bool>(), any::<bool>()),
    ) {
        use synthetic_flux_schnell::Input;
        let schema = schema("fixtures/schemas/synthetic-flux-schnell.json", false);
        let (num_outputs, num_inference_steps, output_quality) = counts;
        let mut builder = Input::builder(prompt.clone())
            .aspect_ratio(aspect_ratio)
            .output_format(output_format)
            .megapixels(megapixels)
            .num_outputs(num_outputs)
            .num_inference_steps(num_inference_steps)
            .output_quality(output_quality)
            .disable_safety_checker(flags.0)
            .go_fast(flags.1);
        if let Some(seed) = seed {
            builder = builder.seed(seed);
        }
        let mut direct = Input::builder(prompt).build().expect("the defaults are valid");
        direct.aspect_ratio = aspect_ratio;
        direct.output_format = output_format;
        direct.megapixels = megapixels;
        direct.num_outputs = num_outputs;
        direct.num_inference_steps = num_inference_steps;
        direct.output_quality = output_quality;
        direct.seed = seed;
        direct.disable_safety_checker = flags.0;
        direct.go_fast = flags.1;
        agrees(&schema, builder.build(), &direct)?;
    }

    #[test]
    fn synthetic_lora_trainer(
        lora_scale in around_f(-1.0, 3.0, 2.0),
        steps in around_i(3, 6000, 100),
        learning_rate in around_f(0.0, 0.01, 0.01),
        lora_rank in around_i(1, 128, 10),
        optimizer in select(synthetic_lora_trainer::Optimizer::ALL),
        token in proptest::option::of("[a-z]{1,8}"),
    ) {
        use synthetic_lora_trainer::{Input, TrainingInput};
        let input_schema = schema("fixtures/schemas/synthetic-lora-trainer.json", false);
        let built = Input::builder("TOK").lora_scale(lora_scale).build();
        let mut direct = Input::builder("TOK").build().expect("valid");
        direct.lora_scale = lora_scale;
        agrees(&input_schema, built, &direct)?;

        let training_schema = schema("fixtures/schemas/synthetic-lora-trainer.json", true);
        let mut builder = TrainingInput::builder("https://example.com/data.zip")
            .steps(steps)
            .learning_rate(learning_rate)
            .lora_rank(lora_rank)
            .optimizer(optimizer);
        if let Some(token) = &token {
            builder = builder.hf_token(token.clone());
        }
        let mut direct = TrainingInput::builder("https://example.com/data.zip")
            .build()
            .expect("valid");
        direct.steps = steps;
        direct.learning_rate = learning_rate;
        direct.lora_rank = lora_rank;
        direct.optimizer = optimizer;
        direct.hf_token = token;
        agrees(&training_schema, builder.build(), &direct)?;
    }

    #[test]
    fn synthetic_whisper(
        model in select(synthetic_whisper::Model::ALL),
        transcription in select(synthetic_whisper::Transcription::ALL),
        language in proptest::option::of(select(synthetic_whisper::Language::ALL)),
        temperature in -10.0f64..10.0,
        patience in proptest::option::of(-10.0f64..10.0),
        no_speech_threshold in around_f(0.0, 1.0, 0.5),
        translate in any::<bool>(),
    ) {
        use synthetic_whisper::Input;
        let schema = schema("fixtures/schemas/synthetic-whisper.json", false);
        let audio = "https://example.com/a.wav";
        let mut builder = Input::builder(audio)
            .model(model)
            .transcription(transcription)
            .temperature(temperature)
            .no_speech_threshold(no_speech_threshold)
            .translate(translate);
        if let Some(language) = language {
            builder = builder.language(language);
        }
        if let Some(patience) = patience {
            builder = builder.patience(patience);
        }
        let mut direct = Input::builder(audio).build().expect("valid");
        direct.model = model;
        direct.transcription = transcription;
        direct.language = language;
        direct.temperature = temperature;
        direct.patience = patience;
        direct.no_speech_threshold = no_speech_threshold;
        direct.translate = translate;
        agrees(&schema, builder.build(), &direct)?;
    }

    #[test]
    fn fake_large_files(
        num_outputs in around_i(1, 10, 5),
        output_bytes in around_i(0, 16 << 30, 10),
        seed in around_i(0, 1000, 10),
    ) {
        use fake_large_files::Input;
        let schema = schema("tests/typed/schemas/fake_large_files.json", false);
        let built = Input::builder()
            .prompt("x")
            .num_outputs(num_outputs)
            .output_bytes(output_bytes)
            .seed(seed)
            .build();
        let mut direct = Input::builder().prompt("x").build().expect("valid");
        direct.num_outputs = num_outputs;
        direct.output_bytes = output_bytes;
        direct.seed = seed;
        agrees(&schema, built, &direct)?;
    }

    #[test]
    fn hostile(
        self_ in around_i(-5, 2, 5),
        gen_ in around_f(-1.5, 3.14159, 1.0),
        add in prop_oneof![select(&[1i64, 2, 4][..]), -10i64..10],
        to_lang in proptest::option::of(prop_oneof![select(&[0.5f64, 1.5][..]), -2.0f64..2.0]),
        sizes in proptest::option::of(proptest::collection::vec(prop_oneof![select(&[8i64, 16][..]), 0i64..20], 0..4)),
        steps in proptest::option::of(around_i(1, 10, 5)),
        numbers in (any::<i64>(), around_i(0, 100, 10), around_f(-1e20, 1e20, 1e19)),
        weights in proptest::collection::vec(-100.0f64..100.0, 0..4),
    ) {
        use hostile::Input;
        let schema = schema("crates/codegen/tests/data/hostile.json", false);
        let (r7, r2, r3) = numbers;
        let required = |self_: i64, r2: i64, r3: f64, r7: i64| {
            Input::builder(
                "t", self_, true, false, "key", "r1", r2, r3, false, vec![],
                "https://example.com/r6", r7,
            )
        };
        let mut builder = required(self_, r2, r3, r7)
            .gen_(gen_)
            .add(add)
            .weights(weights.clone());
        if let Some(x) = to_lang {
            builder = builder.to_lang(x);
        }
        if let Some(x) = sizes.clone() {
            builder = builder.sizes(x);
        }
        if let Some(x) = steps {
            builder = builder.steps(x);
        }
        let mut direct = required(0, 0, 0.0, 0).build().expect("valid");
        direct.self_ = self_;
        direct.r2 = r2;
        direct.r3 = r3;
        direct.r7 = r7;
        direct.gen_ = gen_;
        direct.add = add;
        direct.weights = weights;
        direct.to_lang = to_lang;
        direct.sizes = sizes;
        direct.steps = steps;
        agrees(&schema, builder.build(), &direct)?;
    }
}

#[test]
fn non_finite_numbers_are_refused() {
    let err = synthetic_whisper::Input::builder("https://example.com/a.wav")
        .patience(f64::NAN)
        .build()
        .expect_err("NaN");
    assert_eq!(err.to_string(), "patience: not a finite number");
    let err = hostile::Input::builder(
        "t",
        0,
        true,
        false,
        "key",
        "r1",
        0,
        0.0,
        false,
        vec![],
        "https://example.com/r6",
        0,
    )
    .weights(vec![1.0, f64::INFINITY])
    .build()
    .expect_err("infinity");
    assert_eq!(err.to_string(), "weights[1]: not a finite number");
}

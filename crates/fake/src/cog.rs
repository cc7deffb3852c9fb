//! Input and output schemas as Cog writes them, and the built-in
//! `black-forest-labs/flux-schnell`'s (a leaf module: the scripts and the catalog use it).

use serde_json::{Map, Value, json};

/// Cog's title of a field: `num_outputs` is `Num Outputs`.
pub(crate) fn title_of(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One input property as Cog writes it: its type and constraints, `title` from the name,
/// `x-order` and `description`.
pub(crate) fn field(
    name: &str,
    order: usize,
    description: &str,
    mut schema: Value,
) -> (String, Value) {
    if let Some(map) = schema.as_object_mut() {
        if !map.contains_key("allOf") {
            map.insert("title".into(), json!(title_of(name)));
        }
        map.insert("x-order".into(), json!(order));
        map.insert("description".into(), json!(description));
    }
    (name.to_owned(), schema)
}

/// An enum input as Cog writes it: the property refers to a component named after it, which
/// holds the type and the values (`"description": "An enumeration."`).
pub(crate) fn enum_field(
    name: &str,
    order: usize,
    description: &str,
    values: &[&str],
    default: &str,
    components: &mut Map<String, Value>,
) -> (String, Value) {
    components.insert(
        name.to_owned(),
        json!({
            "type": "string", "title": name, "description": "An enumeration.", "enum": values
        }),
    );
    field(
        name,
        order,
        description,
        json!({
            "allOf": [{"$ref": format!("#/components/schemas/{name}")}],
            "default": default
        }),
    )
}

/// The `Input` object schema of these properties, with `required`.
pub(crate) fn input_object(props: Vec<(String, Value)>, required: &[&str]) -> Value {
    let props: Map<String, Value> = props.into_iter().collect();
    let mut schema = json!({"type": "object", "title": "Input", "properties": props});
    if !required.is_empty()
        && let Some(map) = schema.as_object_mut()
    {
        map.insert("required".into(), json!(required));
    }
    schema
}

/// A Cog OpenAPI document with these components (`Input`, `Output` and enums).
pub(crate) fn cog_document(components: Map<String, Value>) -> Value {
    json!({
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {"schemas": components},
    })
}

/// The OpenAPI document of the built-in `black-forest-labs/flux-schnell`: the real model's
/// inputs (`prompt` required; `aspect_ratio`, `output_format` and `megapixels` enums;
/// `num_outputs` from 1 to `max_outputs`, where the real model stops at 4;
/// `num_inference_steps` 1 to 4; `output_quality` 0 to 100; `seed`; `go_fast`;
/// `disable_safety_checker`) and its output, a list of image URLs.
pub(crate) fn flux_schnell_schema(max_outputs: usize) -> Value {
    let mut c = Map::new();
    let props = vec![
        field(
            "prompt",
            0,
            "Prompt for generated image",
            json!({"type": "string"}),
        ),
        enum_field(
            "aspect_ratio",
            1,
            "Aspect ratio for the generated image",
            &[
                "1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21",
            ],
            "1:1",
            &mut c,
        ),
        field(
            "num_outputs",
            2,
            "Number of outputs to generate",
            json!({"type": "integer", "minimum": 1, "maximum": max_outputs, "default": 1}),
        ),
        field(
            "num_inference_steps",
            3,
            "Number of denoising steps. 4 is recommended, and lower number of steps produce lower quality outputs, faster.",
            json!({"type": "integer", "minimum": 1, "maximum": 4, "default": 4}),
        ),
        field(
            "seed",
            4,
            "Random seed. Set for reproducible generation",
            json!({"type": "integer"}),
        ),
        enum_field(
            "output_format",
            5,
            "Format of the output images",
            &["webp", "jpg", "png"],
            "webp",
            &mut c,
        ),
        field(
            "output_quality",
            6,
            "Quality when saving the output images, from 0 to 100. 100 is best quality, 0 is lowest quality. Not relevant for .png outputs",
            json!({"type": "integer", "minimum": 0, "maximum": 100, "default": 80}),
        ),
        field(
            "disable_safety_checker",
            7,
            "Disable safety checker for generated images.",
            json!({"type": "boolean", "default": false}),
        ),
        field(
            "go_fast",
            8,
            "Run faster predictions with model optimized for speed (currently fp8 quantized); disable to run in original bf16",
            json!({"type": "boolean", "default": true}),
        ),
        enum_field(
            "megapixels",
            9,
            "Approximate number of megapixels for generated image",
            &["1", "0.25"],
            "1",
            &mut c,
        ),
    ];
    c.insert("Input".into(), input_object(props, &["prompt"]));
    c.insert(
        "Output".into(),
        json!({
            "type": "array", "title": "Output", "items": {"type": "string", "format": "uri"}
        }),
    );
    cog_document(c)
}

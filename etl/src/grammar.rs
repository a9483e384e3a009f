//! The one grammar of the "shapes world": scenes, the defects an image of a scene can have, and
//! how people write prompts and negative prompts about them.
//!
//! The crawl fixtures draw every prompt / negative pair from here, a renderer draws the same
//! [`Scene`]s with chosen [`Defect`]s as small images, and the engine reuses the vocabulary; so
//! this module is self-contained (it needs only `rand`) and is the single place to change it.
//!
//! ```text
//! Scene { subject, colour, background, composition, style }
//!   ├─ prompt:   "<style words>, a <colour> <subject> <composition>, <background> background"
//!   │            + noise: quality tags, (word:1.3) weights, <lora:..>, entities, other languages,
//!   │              NSFW words, spam, irrelevant tags
//!   └─ negative: defect words, chosen with probabilities that depend on the style
//!                (a photo's negative names blur and noise far more often than a sketch's),
//!                + the style's opposite words, embedding names, weights; sometimes empty or absent
//! ```
//!
//! Everything is a pure function of the random generator passed in, so a seed reproduces a set.
//!
//! Test: `cargo test -p negopt-etl grammar`.

use rand::Rng;
use rand::seq::IndexedRandom;

/// Declares a closed vocabulary: an enum, its `ALL` list, and each member's words.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => [$($word:literal),+ $(,)?]),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }
        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The words people use for it; the first is the canonical one.
            pub fn words(self) -> &'static [&'static str] {
                match self { $($name::$variant => &[$($word),+]),+ }
            }
            /// The canonical word.
            pub fn word(self) -> &'static str {
                self.words()[0]
            }
        }
    };
}

vocabulary!(
    /// What the image shows.
    Subject {
        /// A filled disc.
        Circle => ["circle", "disc", "round shape"],
        /// A filled square.
        Square => ["square", "box", "block"],
        /// An upward triangle.
        Triangle => ["triangle", "pyramid shape"],
        /// A five-pointed star.
        Star => ["star", "star shape"],
        /// An annulus.
        Ring => ["ring", "donut", "hoop"],
        /// A plus sign.
        Cross => ["cross", "plus sign"],
        /// A heart.
        Heart => ["heart", "heart shape"],
        /// A rhombus.
        Diamond => ["diamond", "rhombus"],
    }
);

vocabulary!(
    /// The subject's colour (also used for backgrounds).
    Colour {
        /// (220, 40, 40)
        Red => ["red", "crimson", "scarlet"],
        /// (40, 170, 60)
        Green => ["green", "emerald"],
        /// (40, 80, 220)
        Blue => ["blue", "azure", "navy"],
        /// (240, 210, 40)
        Yellow => ["yellow", "golden"],
        /// (140, 60, 190)
        Purple => ["purple", "violet"],
        /// (245, 140, 30)
        Orange => ["orange", "amber"],
        /// (245, 245, 245)
        White => ["white", "ivory"],
        /// (20, 20, 20)
        Black => ["black", "jet black"],
    }
);

impl Colour {
    /// The colour as 8-bit RGB, for renderers.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Colour::Red => [220, 40, 40],
            Colour::Green => [40, 170, 60],
            Colour::Blue => [40, 80, 220],
            Colour::Yellow => [240, 210, 40],
            Colour::Purple => [140, 60, 190],
            Colour::Orange => [245, 140, 30],
            Colour::White => [245, 245, 245],
            Colour::Black => [20, 20, 20],
        }
    }
}

vocabulary!(
    /// What is behind the subject.
    Background {
        /// One flat colour.
        Plain => ["plain", "solid", "simple"],
        /// A vertical gradient.
        Gradient => ["gradient", "soft gradient"],
        /// Diagonal stripes.
        Stripes => ["striped", "stripes"],
        /// A dot grid.
        Dots => ["dotted", "polka dot"],
        /// Light blue top half, darker bottom.
        Sky => ["sky", "blue sky"],
        /// Green bottom half, light top.
        Grass => ["grass field", "meadow"],
    }
);

vocabulary!(
    /// Where and how large the subject is.
    Composition {
        /// Centred, medium size.
        Centered => ["centered", "in the middle", "centred"],
        /// Large, filling most of the frame.
        CloseUp => ["close-up", "macro", "filling the frame"],
        /// Small, centred, lots of space.
        Small => ["small", "tiny", "minimal"],
        /// On the left third.
        Left => ["on the left", "left side"],
        /// On the right third.
        Right => ["on the right", "right side"],
    }
);

vocabulary!(
    /// The rendering style the prompt asks for.
    Style {
        /// Sharp, naturally lit.
        Photo => ["photo", "photograph", "realistic photo", "DSLR"],
        /// Flat colours, hard edges.
        Flat => ["flat illustration", "vector art", "minimalist"],
        /// Soft edges, texture.
        Painting => ["oil painting", "painting", "impressionist"],
        /// Monochrome lines.
        Sketch => ["pencil sketch", "line drawing", "sketch"],
        /// Saturated cel shading.
        Anime => ["anime style", "cel shading", "manga"],
        /// Large visible pixels.
        PixelArt => ["pixel art", "8-bit", "retro pixel"],
        /// Shaded 3D.
        Render3d => ["3d render", "octane render", "blender"],
    }
);

vocabulary!(
    /// An image defect: what a renderer can add and what negative prompts name.
    Defect {
        /// Gaussian blur.
        Blur => ["blurry", "blur", "out of focus", "soft focus"],
        /// Additive pixel noise.
        Noise => ["noisy", "grainy", "noise", "film grain"],
        /// Contrast pulled toward grey.
        LowContrast => ["low contrast", "washed out", "dull", "faded"],
        /// Saturation pushed past natural.
        Oversaturation => ["oversaturated", "garish colors", "over saturated"],
        /// Subject cut by the frame edge.
        OffCentreCrop => ["cropped", "out of frame", "off-center", "cut off"],
        /// Semi-transparent stripes with text-like marks.
        Watermark => ["watermark", "text", "signature", "logo"],
        /// A second copy of the subject.
        DuplicatedSubject => ["duplicate", "extra shapes", "cloned", "twin"],
        /// 8×8 block artefacts.
        Blockiness => ["jpeg artifacts", "blocky", "pixelated", "compression artifacts"],
    }
);

impl Style {
    /// How likely a negative prompt written for this style names each defect. Real negatives
    /// follow the style: photographers fight blur and noise, illustrators oversaturation and
    /// watermarks, pixel artists never call their own pixels a defect.
    pub fn defect_odds(self) -> [(Defect, f32); 8] {
        use Defect::*;
        let odds = match self {
            Style::Photo => [0.85, 0.75, 0.45, 0.2, 0.35, 0.55, 0.2, 0.4],
            Style::Flat => [0.5, 0.4, 0.3, 0.6, 0.3, 0.6, 0.45, 0.5],
            Style::Painting => [0.3, 0.2, 0.55, 0.5, 0.35, 0.6, 0.3, 0.3],
            Style::Sketch => [0.55, 0.5, 0.2, 0.1, 0.4, 0.5, 0.3, 0.3],
            Style::Anime => [0.6, 0.3, 0.3, 0.35, 0.45, 0.7, 0.55, 0.65],
            Style::PixelArt => [0.7, 0.45, 0.3, 0.3, 0.3, 0.4, 0.4, 0.02],
            Style::Render3d => [0.5, 0.7, 0.45, 0.35, 0.3, 0.45, 0.4, 0.35],
        };
        let defects = [
            Blur,
            Noise,
            LowContrast,
            Oversaturation,
            OffCentreCrop,
            Watermark,
            DuplicatedSubject,
            Blockiness,
        ];
        std::array::from_fn(|i| (defects[i], odds[i]))
    }

    /// Words of other styles that negatives for this style often exclude.
    pub fn opposites(self) -> &'static [&'static str] {
        match self {
            Style::Photo => &["cartoon", "drawing", "painting", "anime", "3d"],
            Style::Flat => &["photo", "realistic", "3d", "texture"],
            Style::Painting => &["photo", "3d render", "digital"],
            Style::Sketch => &["color", "colour", "photo", "painting"],
            Style::Anime => &["realistic", "photo", "3d", "western"],
            Style::PixelArt => &["smooth", "photo", "realistic", "anti-aliased"],
            Style::Render3d => &["2d", "flat", "sketch", "drawing"],
        }
    }
}

/// One scene: everything a renderer needs to draw it and a caption to describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scene {
    /// The shape shown.
    pub subject: Subject,
    /// The shape's colour.
    pub colour: Colour,
    /// What is behind it.
    pub background: Background,
    /// The background's main colour (never equal to `colour`). `Sky` and `Grass` have their own
    /// colours: for them it is not drawn and not named.
    pub background_colour: Colour,
    /// Where and how large.
    pub composition: Composition,
    /// The style asked for.
    pub style: Style,
}

impl Scene {
    /// A uniformly drawn scene.
    pub fn random(rng: &mut impl Rng) -> Scene {
        let colour = *Colour::ALL.choose(rng).expect("non-empty vocabulary");
        let others: Vec<Colour> = Colour::ALL
            .iter()
            .copied()
            .filter(|c| *c != colour)
            .collect();
        Scene {
            subject: pick(rng, Subject::ALL),
            colour,
            background: pick(rng, Background::ALL),
            background_colour: pick(rng, &others),
            composition: pick(rng, Composition::ALL),
            style: pick(rng, Style::ALL),
        }
    }

    /// Whether the background is drawn (and named) in `background_colour`.
    pub fn background_is_coloured(&self) -> bool {
        !matches!(self.background, Background::Sky | Background::Grass)
    }

    /// The canonical, noise-free caption (canonical words only): what a captioner would say.
    pub fn caption(&self) -> String {
        let colour = if self.background_is_coloured() {
            format!("{} ", self.background_colour.word())
        } else {
            String::new()
        };
        format!(
            "{}, a {} {} {}, {colour}{} background",
            self.style.word(),
            self.colour.word(),
            self.subject.word(),
            self.composition.word(),
            self.background.word(),
        )
    }
}

fn pick<T: Copy>(rng: &mut impl Rng, items: &[T]) -> T {
    *items.choose(rng).expect("non-empty vocabulary")
}

/// How much real-data noise to mix in; each field is a probability per pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Quality tags such as `masterpiece`, `best quality`, `8k`.
    pub quality_tags: f32,
    /// `(word:1.3)` attention weights.
    pub weights: f32,
    /// `<lora:name:0.8>` and embedding names.
    pub loras_and_embeddings: f32,
    /// HTML entities (`&amp;`, `&#39;`) left by scrapers.
    pub html_entities: f32,
    /// A phrase in another language.
    pub other_language: f32,
    /// NSFW words in the prompt (the item is then flagged NSFW).
    pub nsfw: f32,
    /// Spam: links and self-promotion.
    pub spam: f32,
    /// Tags unrelated to the scene (`trending on artstation`).
    pub irrelevant_tags: f32,
    /// The negative prompt is absent.
    pub missing_negative: f32,
    /// The negative prompt is present but empty.
    pub empty_negative: f32,
}

impl Noise {
    /// No noise at all: clean captions and defect-only negatives, always present.
    pub const NONE: Noise = Noise {
        quality_tags: 0.0,
        weights: 0.0,
        loras_and_embeddings: 0.0,
        html_entities: 0.0,
        other_language: 0.0,
        nsfw: 0.0,
        spam: 0.0,
        irrelevant_tags: 0.0,
        missing_negative: 0.0,
        empty_negative: 0.0,
    };
    /// Rates resembling crawled community prompts.
    pub const REALISTIC: Noise = Noise {
        quality_tags: 0.5,
        weights: 0.35,
        loras_and_embeddings: 0.2,
        html_entities: 0.03,
        other_language: 0.05,
        nsfw: 0.03,
        spam: 0.02,
        irrelevant_tags: 0.25,
        missing_negative: 0.08,
        empty_negative: 0.05,
    };
}

const QUALITY_TAGS: &[&str] = &[
    "masterpiece",
    "best quality",
    "8k",
    "highly detailed",
    "sharp focus",
];
const NEGATIVE_QUALITY: &[&str] = &["worst quality", "low quality", "lowres", "normal quality"];
const LORAS: &[&str] = &["shapes_v2", "flatcolor", "detail_tweaker", "pixel_lora"];
const EMBEDDINGS: &[&str] = &["EasyNegative", "badhandv4", "ng_deepnegative_v1_75t"];
const OTHER_LANGUAGE: &[&str] = &[
    "美しい形",
    "简单的背景",
    "красивая форма",
    "forme géométrique",
];
const NSFW_WORDS: &[&str] = &["nsfw", "nude"];
const SPAM: &[&str] = &[
    "follow me for more",
    "visit www.example.invalid",
    "prompt by @shapes_fan",
];
const IRRELEVANT: &[&str] = &[
    "trending on artstation",
    "unreal engine",
    "award winning",
    "by greg rutkowski",
];
const ENTITIES: &[(&str, &str)] = &[(",", " &amp;"), (" ", "&nbsp;"), ("'", "&#39;")];

/// One generated pair: the scene, the defects its negative names, and the two texts.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The scene the prompt describes.
    pub scene: Scene,
    /// The defects the negative names (in order of first mention); empty when it names none.
    pub defects: Vec<Defect>,
    /// The positive prompt, noise included.
    pub prompt: String,
    /// The negative prompt: `None` when absent, possibly `Some("")`.
    pub negative: Option<String>,
    /// The prompt carries NSFW words.
    pub nsfw: bool,
}

/// Draws a scene and writes its prompt and negative with the given noise.
pub fn pair(rng: &mut impl Rng, noise: &Noise) -> Pair {
    let scene = Scene::random(rng);
    let mut prompt_parts: Vec<String> = Vec::new();
    if rng.random::<f32>() < noise.quality_tags {
        prompt_parts.push(pick(rng, QUALITY_TAGS).to_string());
    }
    prompt_parts.push(pick(rng, scene.style.words()).to_string());
    let mut subject = format!(
        "a {} {} {}",
        pick(rng, scene.colour.words()),
        pick(rng, scene.subject.words()),
        pick(rng, scene.composition.words()),
    );
    if rng.random::<f32>() < noise.weights {
        subject = format!("({subject}:{:.1})", rng.random_range(1.1..1.5));
    }
    prompt_parts.push(subject);
    let background_colour = if scene.background_is_coloured() {
        format!("{} ", pick(rng, scene.background_colour.words()))
    } else {
        String::new()
    };
    prompt_parts.push(format!(
        "{background_colour}{} background",
        pick(rng, scene.background.words()),
    ));
    if rng.random::<f32>() < noise.irrelevant_tags {
        prompt_parts.push(pick(rng, IRRELEVANT).to_string());
    }
    if rng.random::<f32>() < noise.loras_and_embeddings {
        prompt_parts.push(format!(
            "<lora:{}:{:.1}>",
            pick(rng, LORAS),
            rng.random_range(0.5..1.0)
        ));
    }
    if rng.random::<f32>() < noise.other_language {
        prompt_parts.push(pick(rng, OTHER_LANGUAGE).to_string());
    }
    let nsfw = rng.random::<f32>() < noise.nsfw;
    if nsfw {
        prompt_parts.push(pick(rng, NSFW_WORDS).to_string());
    }
    if rng.random::<f32>() < noise.spam {
        prompt_parts.push(pick(rng, SPAM).to_string());
    }
    let mut prompt = prompt_parts.join(", ");
    if rng.random::<f32>() < noise.html_entities {
        let (from, to) = pick(rng, ENTITIES);
        prompt = prompt.replacen(from, to, 1);
    }

    let (defects, negative) = negative(rng, &scene, noise);
    Pair {
        scene,
        defects,
        prompt,
        negative,
        nsfw,
    }
}

/// The negative for `scene`: defects by the style's odds (at least one), style opposites, noise.
fn negative(rng: &mut impl Rng, scene: &Scene, noise: &Noise) -> (Vec<Defect>, Option<String>) {
    let draw = rng.random::<f32>();
    if draw < noise.missing_negative {
        return (Vec::new(), None);
    }
    if draw < noise.missing_negative + noise.empty_negative {
        return (Vec::new(), Some(String::new()));
    }
    let odds = scene.style.defect_odds();
    let mut defects: Vec<Defect> = odds
        .iter()
        .filter(|(_, p)| rng.random::<f32>() < *p)
        .map(|(d, _)| *d)
        .collect();
    if defects.is_empty() {
        let best = odds
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .expect("eight defects");
        defects.push(best.0);
    }
    let mut parts: Vec<String> = Vec::new();
    if rng.random::<f32>() < noise.weights {
        parts.push(format!(
            "({}:{:.1})",
            pick(rng, NEGATIVE_QUALITY),
            rng.random_range(1.2..1.6)
        ));
    }
    for d in &defects {
        parts.push(pick(rng, d.words()).to_string());
    }
    if rng.random::<f32>() < 0.5 {
        parts.push(pick(rng, scene.style.opposites()).to_string());
    }
    if rng.random::<f32>() < noise.loras_and_embeddings {
        parts.push(pick(rng, EMBEDDINGS).to_string());
    }
    if rng.random::<f32>() < noise.nsfw * 5.0 {
        parts.push("nsfw".to_string()); // SFW posters often exclude it in the negative
    }
    (defects, Some(parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn grammar_is_deterministic_per_seed() {
        let a: Vec<Pair> = (0..50)
            .map(|_| pair(&mut StdRng::seed_from_u64(7), &Noise::REALISTIC))
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r1 = StdRng::seed_from_u64(1);
        let mut r2 = StdRng::seed_from_u64(2);
        let x: Vec<String> = (0..20)
            .map(|_| pair(&mut r1, &Noise::NONE).prompt)
            .collect();
        let y: Vec<String> = (0..20)
            .map(|_| pair(&mut r2, &Noise::NONE).prompt)
            .collect();
        assert_ne!(x, y);
    }

    #[test]
    fn grammar_clean_pairs_name_scene_and_defects() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..500 {
            let p = pair(&mut rng, &Noise::NONE);
            let neg = p
                .negative
                .as_deref()
                .expect("NONE never drops the negative");
            assert!(!p.defects.is_empty());
            for d in &p.defects {
                assert!(d.words().iter().any(|w| neg.contains(w)), "{d:?} in {neg}");
            }
            assert!(p.scene.style.words().iter().any(|w| p.prompt.contains(w)));
            assert!(p.scene.subject.words().iter().any(|w| p.prompt.contains(w)));
            assert_ne!(p.scene.colour, p.scene.background_colour);
            assert!(!p.nsfw);
        }
    }

    #[test]
    fn grammar_negatives_depend_on_style() {
        // Over many pairs the rate of "blur" words follows the style's odds: photo ≫ painting.
        let mut rng = StdRng::seed_from_u64(4);
        let (mut photo, mut painting) = ((0, 0), (0, 0));
        for _ in 0..4000 {
            let p = pair(&mut rng, &Noise::NONE);
            let blur = p.defects.contains(&Defect::Blur) as u32;
            match p.scene.style {
                Style::Photo => photo = (photo.0 + blur, photo.1 + 1),
                Style::Painting => painting = (painting.0 + blur, painting.1 + 1),
                _ => {}
            }
        }
        let rate = |(k, n): (u32, u32)| k as f32 / n as f32;
        assert!(
            (rate(photo) - 0.85).abs() < 0.08,
            "photo blur rate {}",
            rate(photo)
        );
        assert!(
            rate(painting) < 0.45,
            "painting blur rate {}",
            rate(painting)
        );
    }

    #[test]
    fn grammar_realistic_noise_shows_up() {
        let mut rng = StdRng::seed_from_u64(5);
        let pairs: Vec<Pair> = (0..3000)
            .map(|_| pair(&mut rng, &Noise::REALISTIC))
            .collect();
        let count = |f: &dyn Fn(&Pair) -> bool| pairs.iter().filter(|p| f(p)).count();
        assert!(count(&|p| p.negative.is_none()) > 100);
        assert!(count(&|p| p.negative.as_deref() == Some("")) > 50);
        assert!(count(&|p| p.prompt.contains(":1.")) > 300);
        assert!(count(&|p| p.prompt.contains("<lora:")) > 200);
        assert!(count(&|p| p.prompt.contains('&')) > 20);
        assert!(count(&|p| p.nsfw) > 30);
        assert!(count(&|p| !p.prompt.is_ascii()) > 50);
    }

    #[test]
    fn grammar_caption_uses_canonical_words() {
        let scene = Scene {
            subject: Subject::Star,
            colour: Colour::Red,
            background: Background::Sky,
            background_colour: Colour::Blue,
            composition: Composition::Left,
            style: Style::PixelArt,
        };
        assert_eq!(
            scene.caption(),
            "pixel art, a red star on the left, sky background"
        );
        let striped = Scene {
            background: Background::Stripes,
            ..scene
        };
        assert_eq!(
            striped.caption(),
            "pixel art, a red star on the left, blue striped background"
        );
    }
}

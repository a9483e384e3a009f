//! The example queries over `negative_prompts_db` that the README shows and `benches/sql.rs`
//! times on a million rows. One list, so the README, the bench and the tests never drift apart.

/// An example query: a short name and its SQL.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// Short name (benchmark id).
    pub name: &'static str,
    /// What it answers.
    pub question: &'static str,
    /// The statement.
    pub sql: &'static str,
}

/// The README's example queries.
pub const EXAMPLES: [Example; 4] = [
    Example {
        name: "top_negative_tags",
        question: "Most common negative tags",
        sql: "SELECT tag, count(*) AS pairs
FROM (SELECT unnest(tags(negative_prompt)) AS tag FROM negative_prompts_db)
GROUP BY tag
ORDER BY pairs DESC, tag
LIMIT 20",
    },
    Example {
        name: "negative_length_by_model_sampler",
        question: "Negative prompt length by model and sampler",
        sql: "SELECT model, sampler, count(*) AS pairs,
       round(avg(token_count(negative_prompt)), 1) AS avg_tokens,
       round(avg(length(negative_prompt)), 1) AS avg_chars
FROM negative_prompts_db
GROUP BY model, sampler
ORDER BY pairs DESC, model, sampler
LIMIT 20",
    },
    Example {
        name: "share_per_source",
        question: "Share of pairs per source",
        sql: "SELECT source, count(*) AS pairs,
       round(100.0 * count(*) / sum(count(*)) OVER (), 2) AS percent
FROM negative_prompts_db
GROUP BY source
ORDER BY pairs DESC, source",
    },
    Example {
        name: "cluster_sizes",
        question: "Near-duplicate cluster sizes (rows each kept pair stands for)",
        sql: "SELECT cluster_size, count(*) AS clusters, sum(cluster_size) AS raw_pairs
FROM (SELECT cluster_id, max(cluster_size) AS cluster_size
      FROM negative_prompts_db GROUP BY cluster_id)
GROUP BY cluster_size
ORDER BY cluster_size",
    },
];

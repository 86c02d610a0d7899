-- Resource tags of repositories (ECR TagResource).
CREATE TABLE repository_tags (
    repository_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
    key           TEXT    NOT NULL,
    value         TEXT    NOT NULL,
    PRIMARY KEY (repository_id, key)
);

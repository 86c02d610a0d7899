-- ECR repository settings.
ALTER TABLE repositories ADD COLUMN tag_mutability TEXT NOT NULL DEFAULT 'MUTABLE';
ALTER TABLE repositories ADD COLUMN scan_on_push INTEGER NOT NULL DEFAULT 0;
ALTER TABLE repositories ADD COLUMN encryption_type TEXT NOT NULL DEFAULT 'AES256';
ALTER TABLE repositories ADD COLUMN kms_key TEXT;

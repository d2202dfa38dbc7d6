-- The agent who took the call and the queue it waited in, on the call's CDR.
ALTER TABLE cdrs ADD COLUMN agent TEXT;
ALTER TABLE cdrs ADD COLUMN queue TEXT;

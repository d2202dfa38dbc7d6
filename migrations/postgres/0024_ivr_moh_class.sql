-- An IVR menu's music-on-hold class (keep in step with ../sqlite/0024_ivr_moh_class.sql): what a
-- caller who leaves the menu for an agent's extension hears while that agent's phone rings (a
-- folder of the music directory; 'default' for rows made before this migration). Queues and
-- ring groups play their own class.
ALTER TABLE ivr_menus ADD COLUMN moh_class TEXT NOT NULL DEFAULT 'default';

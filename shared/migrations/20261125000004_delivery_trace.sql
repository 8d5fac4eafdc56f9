-- The W3C trace context of the request that caused a delivery, so the relay
-- (a background task) can continue that trace on the Cloud Tasks task.
-- NULL for deliveries made outside a trace.
ALTER TABLE webhook_deliveries ADD COLUMN traceparent text;

import { defineSchema } from '../shared/schema.ts'

/**
 * The demo schema: the sync guide's own example tables, one per pattern (DESIGN.md).
 * The README, the demo app and outside checks use it.
 */
export const demoSchema = defineSchema({
  tables: {
    customers: {
      primaryKey: ['customer_id'],
      columns: {
        customer_id: { type: 'integer', validators: [{ type: 'int', min: 1 }] },
        name: { type: 'text' },
        email: {
          type: 'text',
          validators: [{ type: 'string', regex: '^[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\\.[a-zA-Z]{2,}$' }],
        },
        updated_at: { type: 'timestamp' },
      },
      sync: 'write-through',
      returnsData: true,
      conflict: 'manual',
    },
    orders: {
      primaryKey: ['order_id'],
      columns: {
        order_id: { type: 'text', validators: [{ type: 'uuid' }] },
        customer_id: { type: 'integer', required: true, validators: [{ type: 'int', min: 1 }] },
        total_amount: {
          type: 'text',
          required: true,
          validators: [{ type: 'string', regex: '^\\d+(\\.\\d{2})?$' }],
        },
        status: {
          type: 'text',
          validators: [{ type: 'enum', allowedValues: ['pending', 'paid', 'shipped', 'cancelled'] }],
        },
        created_at: { type: 'timestamp' },
      },
      sync: 'write-back',
      conflict: 'lww',
    },
    products: {
      primaryKey: ['product_id'],
      columns: {
        product_id: { type: 'integer', validators: [{ type: 'int', min: 1 }] },
        name: { type: 'text' },
        unit_price: { type: 'decimal(10,2)', merge: 'max' },
        units_in_stock: { type: 'integer', merge: 'min' },
        notes: { type: 'text', merge: 'concat' },
      },
      sync: 'hybrid',
      schedule: '5m',
      conflict: 'merge',
    },
    metrics: {
      primaryKey: ['metric_id'],
      columns: {
        metric_id: { type: 'text' },
        value: { type: 'double' },
        updated_at: { type: 'timestamp' },
      },
      sync: 'write-back',
      invalidateOnWrite: true,
      conflict: 'lww',
    },
  },
})

export type DemoSchema = typeof demoSchema

// Replays a qfix command file into liquibook's plain OrderBook: the C++ baseline of
// `qfix bench engine` (docs/benchmarks.md, "Matching engine").
//
// Built at bench time by qfix.bench.engine with `g++ -O3 -std=c++17 -DNDEBUG -I<dir>`,
// where <dir> holds liquibook's `book/` headers (the PyPI `liquibook` wheel ships them
// under include/liquibook). Nothing of liquibook is part of qfix.
//
// Usage: driver COMMANDS.lqb  ->  one JSON object on stdout.
//
// Command file, little-endian:
//   header, 32 bytes: magic "QFIXLQB1", u64 count, u64 prefill, u32 books, u32 reserved
//   count records of 40 bytes (struct Cmd below)
// The first `prefill` records are replayed untimed; the timer covers only the replay loop
// of the rest. One OrderBook per instrument (dense index `book`), one application-side
// hash map from the 64-bit order key (SessionID << 40 | ClOrdID) to the order, which the
// callbacks keep current (fills and cancels remove, replaces re-key). Nothing is written
// per event: the callbacks only count trades and traded quantity.

#include "book/order_book.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <vector>

namespace lb = liquibook::book;

namespace {

enum Kind : uint8_t { NEW = 0, CANCEL = 1, REPLACE = 2, MASS_CANCEL = 3, NOP = 4 };
enum Flag : uint8_t { IOC = 1, MARKET = 2, AON = 4 };

#pragma pack(push, 1)
struct Cmd {
  uint8_t kind;
  uint8_t side;     // NEW/REPLACE: 0 buy, 1 sell; MASS_CANCEL: 0 both, 1 buy, 2 sell
  uint8_t flags;    // NEW: Flag bits; MASS_CANCEL: 1 = only instrument `book`
  uint8_t pad;
  uint32_t book;    // dense instrument index
  uint64_t key;     // NEW: the order's key; CANCEL/REPLACE: the order's current key
  uint64_t key2;    // REPLACE: the key the order takes
  int64_t price;    // ticks; NEW market: ignored
  uint32_t qty;     // NEW: OrderQty; REPLACE: new total OrderQty
  uint32_t account; // NEW: the order's account; MASS_CANCEL: the account to cancel
};
#pragma pack(pop)
static_assert(sizeof(Cmd) == 40, "command record is 40 bytes");

// The order interface OrderBook<OrderPtr> calls, as plain inline methods: liquibook's
// template takes any order class with this interface, and skipping the virtual base
// (lb::Order) is its fastest use.
struct Order {
  uint64_t key;
  lb::Price px;
  lb::Quantity qty;
  uint32_t book;
  uint32_t account;
  bool buy;

  bool is_buy() const { return buy; }
  lb::Price price() const { return px; }
  lb::Price stop_price() const { return 0; }
  lb::Quantity order_qty() const { return qty; }
  bool is_limit() const { return px > 0; }
  bool all_or_none() const { return false; }
  bool immediate_or_cancel() const { return false; }
};

struct Context {
  std::unordered_map<uint64_t, Order*> live;
  uint64_t trades = 0;
  uint64_t volume = 0;
  uint64_t cancel_rejects = 0;
  uint64_t replace_rejects = 0;
};

class Book : public lb::OrderBook<Order*> {
public:
  Context* ctx = nullptr;

protected:
  void on_fill(Order* const& order, Order* const& matched, lb::Quantity qty, lb::Price, bool inbound_filled,
               bool matched_filled) override {
    ++ctx->trades;
    ctx->volume += qty;
    if (inbound_filled) ctx->live.erase(order->key);
    if (matched_filled) ctx->live.erase(matched->key);
  }
  void on_cancel(Order* const& order, lb::Quantity) override { ctx->live.erase(order->key); }
  void on_cancel_reject(Order* const&, const char*) override { ++ctx->cancel_rejects; }
  void on_replace(Order* const& order, lb::Quantity, lb::Quantity new_qty, lb::Price new_price) override {
    order->qty = new_qty;
    order->px = new_price;
  }
  void on_replace_reject(Order* const&, const char*) override { ++ctx->replace_rejects; }
};

struct Driver {
  Context ctx;
  std::vector<Book> books;
  std::vector<Order> orders;  // reserved up front: stable addresses, no allocation in the loop
  uint64_t missing_cancels = 0;
  uint64_t missing_replaces = 0;

  explicit Driver(uint32_t n_books, size_t n_new) : books(n_books) {
    for (auto& b : books) b.ctx = &ctx;
    ctx.live.reserve(n_new);
    orders.reserve(n_new);
  }

  void apply(const Cmd& c) {
    switch (c.kind) {
      case NEW: {
        Order& o = orders.emplace_back();
        o.key = c.key;
        o.buy = c.side == 0;
        o.px = (c.flags & MARKET) ? lb::MARKET_ORDER_PRICE : static_cast<lb::Price>(c.price);
        o.qty = c.qty;
        o.book = c.book;
        o.account = c.account;
        ctx.live.emplace(o.key, &o);
        lb::OrderConditions cond = lb::oc_no_conditions;
        if (c.flags & IOC) cond |= lb::oc_immediate_or_cancel;
        if (c.flags & AON) cond |= lb::oc_all_or_none;
        books[o.book].add(&o, cond);
        break;
      }
      case CANCEL: {
        auto it = ctx.live.find(c.key);
        if (it == ctx.live.end()) {
          ++missing_cancels;
          break;
        }
        Order* o = it->second;
        books[o->book].cancel(o);
        break;
      }
      case REPLACE: {
        auto it = ctx.live.find(c.key);
        if (it == ctx.live.end()) {
          ++missing_replaces;
          break;
        }
        Order* o = it->second;
        ctx.live.erase(it);
        o->key = c.key2;
        ctx.live.emplace(o->key, o);
        int64_t delta = static_cast<int64_t>(c.qty) - static_cast<int64_t>(o->qty);
        books[o->book].replace(o, delta, static_cast<lb::Price>(c.price));
        break;
      }
      case MASS_CANCEL: {
        std::vector<Order*> hit;
        for (const auto& kv : ctx.live) {
          const Order* o = kv.second;
          if (o->account != c.account) continue;
          if ((c.flags & 1) && o->book != c.book) continue;
          if (c.side == 1 && !o->buy) continue;
          if (c.side == 2 && o->buy) continue;
          hit.push_back(kv.second);
        }
        for (Order* o : hit) books[o->book].cancel(o);
        break;
      }
      default:
        break;
    }
  }
};

struct Header {
  char magic[8];
  uint64_t count;
  uint64_t prefill;
  uint32_t books;
  uint32_t reserved;
};
static_assert(sizeof(Header) == 32, "header is 32 bytes");

int fail(const char* what, const char* path) {
  std::fprintf(stderr, "liquibook driver: %s: %s\n", path, what);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s COMMANDS.lqb\n", argv[0]);
    return 2;
  }
  const char* path = argv[1];
  std::FILE* f = std::fopen(path, "rb");
  if (!f) return fail("cannot open", path);
  Header h;
  if (std::fread(&h, sizeof h, 1, f) != 1 || std::memcmp(h.magic, "QFIXLQB1", 8) != 0) {
    std::fclose(f);
    return fail("not a qfix liquibook command file", path);
  }
  std::vector<Cmd> cmds(h.count);
  if (h.count && std::fread(cmds.data(), sizeof(Cmd), h.count, f) != h.count) {
    std::fclose(f);
    return fail("shorter than its header says", path);
  }
  std::fclose(f);
  if (h.prefill > h.count) return fail("prefill exceeds count", path);
  size_t n_new = 0;
  for (const Cmd& c : cmds) n_new += c.kind == NEW;

  Driver d(h.books, n_new);
  for (uint64_t i = 0; i < h.prefill; ++i) d.apply(cmds[i]);
  d.ctx.trades = d.ctx.volume = 0;
  d.ctx.cancel_rejects = d.ctx.replace_rejects = 0;
  d.missing_cancels = d.missing_replaces = 0;

  auto start = std::chrono::steady_clock::now();
  for (uint64_t i = h.prefill; i < h.count; ++i) d.apply(cmds[i]);
  auto stop = std::chrono::steady_clock::now();
  double seconds = std::chrono::duration<double>(stop - start).count();

  std::printf(
      "{\"messages\": %llu, \"seconds\": %.9f, \"trades\": %llu, \"volume\": %llu, \"live_orders\": %llu, "
      "\"missing_cancels\": %llu, \"missing_replaces\": %llu, \"cancel_rejects\": %llu, "
      "\"replace_rejects\": %llu}\n",
      static_cast<unsigned long long>(h.count - h.prefill), seconds, static_cast<unsigned long long>(d.ctx.trades),
      static_cast<unsigned long long>(d.ctx.volume), static_cast<unsigned long long>(d.ctx.live.size()),
      static_cast<unsigned long long>(d.missing_cancels), static_cast<unsigned long long>(d.missing_replaces),
      static_cast<unsigned long long>(d.ctx.cancel_rejects), static_cast<unsigned long long>(d.ctx.replace_rejects));
  return 0;
}

// Wakes coroutines that wait for work: each waiter sleeps until its own deadline or until
// notify_all(). Single-threaded (the engine's io thread); no lost wake-ups because a notify
// only matters to waiters already parked, and callers re-check their condition after waking.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <list>

namespace devlist::sync {

class wakeup {
  public:
    // Returns at `deadline`, on notify_all(), or when the awaiting coroutine is cancelled.
    boost::asio::awaitable<void> wait_until(std::chrono::steady_clock::time_point deadline) {
        auto executor = co_await boost::asio::this_coro::executor;
        boost::asio::steady_timer timer(executor, deadline);
        auto it = waiters_.insert(waiters_.end(), &timer);
        co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        waiters_.erase(it);
    }

    void notify_all() {
        for (auto* timer : waiters_)
            timer->cancel();
    }

  private:
    std::list<boost::asio::steady_timer*> waiters_;
};

}  // namespace devlist::sync
